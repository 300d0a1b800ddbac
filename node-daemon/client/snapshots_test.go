package client_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cobaltstore/cobalt/node-daemon/client"
	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
	"github.com/cobaltstore/cobalt/node-daemon/server/servertest"
)

const storeUUID = servertest.StoreUUID

func ref(id string) *nodepb.VolumeRef { return &nodepb.VolumeRef{StoreUuid: storeUUID, VolumeId: id} }

func snapRef(id string) *nodepb.SnapshotRef {
	return &nodepb.SnapshotRef{StoreUuid: storeUUID, SnapshotId: id}
}

// TestSnapshotRoundTrip drives the client's snapshot calls against a real mTLS server: snapshot,
// list across pages, restore, clone, errors with their codes, delete.
func TestSnapshotRoundTrip(t *testing.T) {
	e := servertest.Start(t, 1<<30)
	c, err := client.Dial(e.Addr, e.ClientTLS(t, "cobalt-operator"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if _, err := c.Volumes.CreateVolume(ctx, &nodepb.CreateVolumeRequest{Ref: ref("vol"), SizeBytes: 4 << 20}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteFrom(ctx, ref("vol"), 0, bytes.NewReader([]byte("before"))); err != nil {
		t.Fatal(err)
	}
	snap, err := c.CreateSnapshot(ctx, ref("vol"), "snap-0000")
	if err != nil {
		t.Fatalf("CreateSnapshot: %v", err)
	}
	if snap.GetSourceVolumeId() != "vol" || snap.GetSizeBytes() != 4<<20 || snap.GetRef().GetSnapshotId() != "snap-0000" {
		t.Fatalf("CreateSnapshot = %v", snap)
	}
	if _, err := c.WriteFrom(ctx, ref("vol"), 0, bytes.NewReader([]byte("after!"))); err != nil {
		t.Fatal(err)
	}
	// More snapshots than one default page (1000) holds, so ListSnapshots must follow pages.
	for i := 1; i <= 1100; i++ {
		if _, err := c.CreateSnapshot(ctx, ref("vol"), fmt.Sprintf("snap-%04d", i)); err != nil {
			t.Fatal(err)
		}
	}
	all, err := c.ListSnapshots(ctx, storeUUID, "vol")
	if err != nil {
		t.Fatalf("ListSnapshots: %v", err)
	}
	if len(all) != 1101 || all[0].GetRef().GetSnapshotId() != "snap-0000" || all[1100].GetRef().GetSnapshotId() != "snap-1100" {
		t.Fatalf("ListSnapshots returned %d snapshots, want snap-0000 to snap-1100", len(all))
	}
	if none, err := c.ListSnapshots(ctx, storeUUID, "other"); err != nil || len(none) != 0 {
		t.Fatalf("ListSnapshots of a volume without snapshots = %v, %v", none, err)
	}
	got, err := c.GetSnapshot(ctx, snapRef("snap-0000"))
	if err != nil || got.GetSourceVolumeId() != "vol" {
		t.Fatalf("GetSnapshot = %v, %v", got, err)
	}

	restored, err := c.RestoreSnapshot(ctx, ref("restored"), "snap-0000", 8<<20)
	if err != nil || restored.GetSizeBytes() != 8<<20 || restored.GetContentSource().GetSnapshotId() != "snap-0000" {
		t.Fatalf("RestoreSnapshot = %v, %v", restored, err)
	}
	var out bytes.Buffer
	if _, err := c.ReadTo(ctx, ref("restored"), 0, 6, &out); err != nil || out.String() != "before" {
		t.Fatalf("restored volume reads %q, %v; want %q", out.String(), err, "before")
	}
	cloned, err := c.CloneVolume(ctx, ref("cloned"), "vol", 0)
	if err != nil || cloned.GetSizeBytes() != 4<<20 || cloned.GetContentSource().GetVolumeId() != "vol" {
		t.Fatalf("CloneVolume = %v, %v", cloned, err)
	}
	out.Reset()
	if _, err := c.ReadTo(ctx, ref("cloned"), 0, 6, &out); err != nil || out.String() != "after!" {
		t.Fatalf("cloned volume reads %q, %v; want %q", out.String(), err, "after!")
	}

	// Errors keep the daemon's codes through the client's wrapping.
	if _, err := c.RestoreSnapshot(ctx, ref("small"), "snap-0000", 1<<20); status.Code(err) != codes.OutOfRange {
		t.Fatalf("RestoreSnapshot smaller than the snapshot = %v, want OutOfRange", err)
	}
	if _, err := c.CloneVolume(ctx, ref("c2"), "missing", 0); status.Code(err) != codes.NotFound {
		t.Fatalf("CloneVolume of a missing volume = %v, want NotFound", err)
	}
	if _, err := c.CreateSnapshot(ctx, ref("cloned"), "snap-0000"); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("CreateSnapshot of another volume under a taken ID = %v, want AlreadyExists", err)
	}

	if err := c.DeleteSnapshot(ctx, snapRef("snap-0000")); err != nil {
		t.Fatalf("DeleteSnapshot: %v", err)
	}
	if err := c.DeleteSnapshot(ctx, snapRef("snap-0000")); err != nil {
		t.Fatalf("repeated DeleteSnapshot: %v", err)
	}
	if _, err := c.GetSnapshot(ctx, snapRef("snap-0000")); status.Code(err) != codes.NotFound {
		t.Fatalf("GetSnapshot after delete = %v, want NotFound", err)
	}
	if rest, err := c.ListSnapshots(ctx, storeUUID, ""); err != nil || len(rest) != 1100 {
		t.Fatalf("ListSnapshots after one delete = %d snapshots, %v; want 1100", len(rest), err)
	}
}
