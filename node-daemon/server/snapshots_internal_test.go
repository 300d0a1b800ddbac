package server

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cobaltstore/cobalt/node-daemon/objstore/memstore"
	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
	"github.com/cobaltstore/cobalt/node-daemon/replica"
	"github.com/cobaltstore/cobalt/node-daemon/volume"
)

// TestSnapshotCallsInFlight: a create or delete of a snapshot whose slot is held gets Aborted, as
// does a restore into a volume whose slot is held; a snapshot and a volume of the same ID do not
// share a slot.
func TestSnapshotCallsInFlight(t *testing.T) {
	ctx := context.Background()
	const store = "store-1"
	st := memstore.New(store, 1<<30)
	vm, err := volume.Open(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	stores := NewStores()
	if err := stores.Add(&Mounted{Store: st, Volumes: vm}); err != nil {
		t.Fatal(err)
	}
	s := &volumeService{stores: stores, inflight: newInFlight(), replicas: replica.NewNode(stores)}
	vref := &nodepb.VolumeRef{StoreUuid: store, VolumeId: "x"}
	if _, err := s.CreateVolume(ctx, &nodepb.CreateVolumeRequest{Ref: vref, SizeBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}

	release, err := s.guardSnapshot(store, "x", "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateSnapshot(ctx, &nodepb.CreateSnapshotRequest{Source: vref, SnapshotId: "x"}); status.Code(err) != codes.Aborted {
		t.Fatalf("CreateSnapshot with its slot held = %v, want Aborted", err)
	}
	if _, err := s.DeleteSnapshot(ctx, &nodepb.DeleteSnapshotRequest{Ref: &nodepb.SnapshotRef{StoreUuid: store, SnapshotId: "x"}}); status.Code(err) != codes.Aborted {
		t.Fatalf("DeleteSnapshot with its slot held = %v, want Aborted", err)
	}
	// Volume x's slot is its own: resizing it runs while snapshot x's slot is held.
	if _, err := s.ResizeVolume(ctx, &nodepb.ResizeVolumeRequest{Ref: vref, SizeBytes: 2 << 20}); err != nil {
		t.Fatalf("ResizeVolume of volume x while snapshot x's slot is held: %v", err)
	}
	release()
	if _, err := s.CreateSnapshot(ctx, &nodepb.CreateSnapshotRequest{Source: vref, SnapshotId: "x"}); err != nil {
		t.Fatalf("CreateSnapshot after release: %v", err)
	}

	rref := &nodepb.VolumeRef{StoreUuid: store, VolumeId: "r"}
	release, err = s.guard(rref, "test")
	if err != nil {
		t.Fatal(err)
	}
	restore := &nodepb.CreateVolumeRequest{Ref: rref, ContentSource: &nodepb.VolumeContentSource{Source: &nodepb.VolumeContentSource_SnapshotId{SnapshotId: "x"}}}
	if _, err := s.CreateVolume(ctx, restore); status.Code(err) != codes.Aborted {
		t.Fatalf("restore into a volume whose slot is held = %v, want Aborted", err)
	}
	release()
	if _, err := s.CreateVolume(ctx, restore); err != nil {
		t.Fatalf("restore after release: %v", err)
	}
}
