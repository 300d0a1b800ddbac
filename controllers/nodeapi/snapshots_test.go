package nodeapi_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/controllers"
	"github.com/cobaltstore/cobalt/controllers/nodeapi"
	"github.com/cobaltstore/cobalt/node-daemon/client"
	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
	"github.com/cobaltstore/cobalt/node-daemon/server/servertest"
)

func TestNodeClientImplementsTheSnapshotContract(t *testing.T) {
	env := servertest.Start(t, 64<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, err := nodeapi.New(env.ClientTLS(t, "cobalt-operator"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	store := &storagev1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: "node-a-loop0", Annotations: map[string]string{storagev1alpha1.AnnotationNodeEndpoint: env.Addr}}}
	store.Status.UUID = servertest.StoreUUID
	newVolume := func(uid types.UID, size string) *storagev1alpha1.Volume {
		v := &storagev1alpha1.Volume{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: string(uid), UID: uid}}
		v.Spec.Size = resource.MustParse(size)
		return v
	}
	src := newVolume("src-uid", "8Mi")
	if _, err := nc.CreateVolume(ctx, store, src, controllers.ContentSource{}); err != nil {
		t.Fatalf("CreateVolume: %v", err)
	}
	c, err := client.Dial(env.Addr, env.ClientTLS(t, "test"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ref := &nodepb.VolumeRef{StoreUuid: servertest.StoreUUID, VolumeId: "src-uid"}
	data := []byte(strings.Repeat("cobalt", 1000))
	if _, err := c.Volumes.Write(ctx, &nodepb.WriteRequest{Ref: ref, Offset: 0, Data: data}); err != nil {
		t.Fatalf("write source: %v", err)
	}

	snap := &storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s", UID: "snap-uid"}}
	before := time.Now().Add(-time.Minute)
	info, err := nc.CreateSnapshot(ctx, store, src, snap)
	if err != nil {
		t.Fatalf("CreateSnapshot: %v", err)
	}
	if info.SourceVolumeID != "src-uid" || info.RestoreBytes != 8<<20 || info.ReferencedBytes <= 0 || info.CreationTime.Before(before) {
		t.Fatalf("CreateSnapshot = %+v", info)
	}
	// Idempotent, and the snapshot is named by the Snapshot's UID.
	if again, err := nc.CreateSnapshot(ctx, store, src, snap); err != nil || again.SourceVolumeID != "src-uid" {
		t.Fatalf("repeated CreateSnapshot = %+v, %v", again, err)
	}
	got, err := nc.GetSnapshot(ctx, store, snap)
	if err != nil || got.RestoreBytes != 8<<20 || got.ReferencedBytes != info.ReferencedBytes {
		t.Fatalf("GetSnapshot = %+v, %v", got, err)
	}

	// A restore smaller than the snapshot is refused as smaller than its source, with the code.
	small := newVolume("small-uid", "4Mi")
	_, err = nc.CreateVolume(ctx, store, small, controllers.ContentSource{SnapshotID: "snap-uid"})
	if !errors.Is(err, controllers.ErrSmallerThanSource) || status.Code(err) != codes.OutOfRange {
		t.Fatalf("smaller restore = %v, want ErrSmallerThanSource", err)
	}
	// A restore at least as large carries the snapshot's data.
	restored := newVolume("restored-uid", "16Mi")
	if alloc, err := nc.CreateVolume(ctx, store, restored, controllers.ContentSource{SnapshotID: "snap-uid"}); err != nil || alloc.AllocatedBytes != 16<<20 {
		t.Fatalf("restore = %+v, %v", alloc, err)
	}
	if alloc, err := nc.CreateVolume(ctx, store, restored, controllers.ContentSource{SnapshotID: "snap-uid"}); err != nil || alloc.AllocatedBytes != 16<<20 {
		t.Fatalf("repeated restore = %+v, %v", alloc, err)
	}
	clone := newVolume("clone-uid", "8Mi")
	if _, err := nc.CreateVolume(ctx, store, clone, controllers.ContentSource{VolumeID: "src-uid"}); err != nil {
		t.Fatalf("clone: %v", err)
	}
	for _, id := range []string{"restored-uid", "clone-uid"} {
		v, err := c.Volumes.GetVolume(ctx, &nodepb.GetVolumeRequest{Ref: &nodepb.VolumeRef{StoreUuid: servertest.StoreUUID, VolumeId: id}})
		if err != nil {
			t.Fatalf("get %s: %v", id, err)
		}
		if v.GetVolume().GetContentSource() == nil {
			t.Fatalf("%s was created without its content source", id)
		}
		r, err := c.Volumes.Read(ctx, &nodepb.ReadRequest{Ref: &nodepb.VolumeRef{StoreUuid: servertest.StoreUUID, VolumeId: id}, Offset: 0, Length: int64(len(data))})
		if err != nil || string(r.GetData()) != string(data) {
			t.Fatalf("read %s: %v (data equal: %v)", id, err, err == nil && string(r.GetData()) == string(data))
		}
	}
	if _, err := nc.CreateVolume(ctx, store, newVolume("both-uid", "8Mi"), controllers.ContentSource{SnapshotID: "a", VolumeID: "b"}); err == nil {
		t.Fatal("a content source naming both a snapshot and a volume was accepted")
	}

	// The source volume can go; the snapshot stays.
	if err := nc.DeleteVolume(ctx, store, src); err != nil {
		t.Fatalf("delete source: %v", err)
	}
	if _, err := nc.GetSnapshot(ctx, store, snap); err != nil {
		t.Fatalf("snapshot after its source was deleted: %v", err)
	}
	if err := nc.DeleteSnapshot(ctx, store, snap); err != nil {
		t.Fatalf("DeleteSnapshot: %v", err)
	}
	if err := nc.DeleteSnapshot(ctx, store, snap); err != nil {
		t.Fatalf("repeated DeleteSnapshot: %v", err)
	}
	if _, err := nc.GetSnapshot(ctx, store, snap); !errors.Is(err, controllers.ErrSnapshotNotFound) {
		t.Fatalf("GetSnapshot of a deleted snapshot = %v, want ErrSnapshotNotFound", err)
	}
	// A snapshot of a missing volume is the node's NotFound, not a marked error.
	if _, err := nc.CreateSnapshot(ctx, store, newVolume("gone-uid", "8Mi"), snap); status.Code(err) != codes.NotFound {
		t.Fatalf("snapshot of a missing volume = %v", err)
	}
}
