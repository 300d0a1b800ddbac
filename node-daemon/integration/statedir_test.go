package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
	nodeclient "github.com/cobaltstore/cobalt/node-daemon/client"
	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
)

// stateDirObjects is how many objects TestStoreMountsWithoutItsStateDirectory writes.
const stateDirObjects = 24

// stateDirObject is object i's data: sizes from a few bytes to past a MiB, so small (deferred)
// and large (direct) writes are both covered.
func stateDirObject(i int) []byte {
	return bytes.Repeat([]byte{byte(i + 1)}, 1+i*i*2500)
}

// TestStoreMountsWithoutItsStateDirectory: the daemon keeps each store's metadata on its device,
// so a store outlives the node's state directory. A store made and written by a daemon on node-a
// mounts with every object (data, attribute, omap) under a daemon on node-b whose state directory
// is new and empty, after node-a's state directory was deleted, as when a disk moves to another
// node or a node's root disk is rebuilt; both Stores report the metadata on the device, the new
// state directory holds nothing for the store, and `node-daemon fsck` is clean without any.
func TestStoreMountsWithoutItsStateDirectory(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	dev := newDevice(t, 128<<20, 0, nil)
	cfg := c.daemonConfig(t, "node-a", dev)
	d := startInProcess(t, cfg)
	st := servingStore(t, "node-a", dev, "")
	checkMetadataOnDevice(t, st)
	cl := c.client(t, st.Annotations[storagev1alpha1.AnnotationNodeEndpoint])
	id := st.Status.UUID
	// One transaction per object (each well under gRPC's message limit), the first also makes
	// the collection.
	ops := []*nodepb.Op{{Op: &nodepb.Op_CreateCollection{CreateCollection: &nodepb.CreateCollectionOp{Collection: "c"}}}}
	for i := range stateDirObjects {
		ref := &nodepb.ObjectRef{Collection: "c", Object: fmt.Sprintf("o%02d", i)}
		ops = append(ops,
			&nodepb.Op{Op: &nodepb.Op_Write{Write: &nodepb.WriteOp{Ref: ref, Data: stateDirObject(i)}}},
			&nodepb.Op{Op: &nodepb.Op_SetAttr{SetAttr: &nodepb.SetAttrOp{Ref: ref, Name: "n", Value: []byte(ref.Object)}}},
			&nodepb.Op{Op: &nodepb.Op_OmapSetKeys{OmapSetKeys: &nodepb.OmapSetKeysOp{Ref: ref, Entries: map[string][]byte{"k": []byte(ref.Object)}}}})
		if _, err := cl.Objects.Commit(ctx, &nodepb.CommitRequest{StoreUuid: id, Ops: ops}); err != nil {
			t.Fatalf("commit object %s: %v", ref.Object, err)
		}
		ops = nil
	}
	d.stop(t)
	if err := os.RemoveAll(cfg.StateDir); err != nil {
		t.Fatal(err)
	}

	moved := *cfg
	moved.NodeName, moved.StateDir = "node-b", t.TempDir()
	moved.HealthSocket, moved.CSIStateDir, moved.CSIFuseDir = "", "", "" // derived from the state directory again
	d = startInProcess(t, &moved)
	st = servingStore(t, "node-b", dev, "")
	if st.Status.UUID != id {
		t.Fatalf("node-b serves store %s, want %s: the device was formatted again", st.Status.UUID, id)
	}
	checkMetadataOnDevice(t, st)
	checkStateDirObjects(ctx, t, c.client(t, st.Annotations[storagev1alpha1.AnnotationNodeEndpoint]), id)
	if entries, err := os.ReadDir(moved.StoresDir()); err != nil || len(entries) != 0 {
		t.Fatalf("node-b's state directory holds %v (%v) for the store, want nothing", entries, err)
	}
	d.stop(t)

	out, err := exec.Command(daemonBin, "fsck", dev, "--state-dir", "").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "fsck: clean") || !strings.Contains(string(out), fmt.Sprintf("objects=%d", stateDirObjects)) {
		t.Fatalf("node-daemon fsck %s without a state directory: %v\n%s", dev, err, out)
	}
	t.Logf("$ node-daemon fsck %s --state-dir ''\n%s", dev, out)
}

func checkMetadataOnDevice(t *testing.T, st *storagev1alpha1.Store) {
	t.Helper()
	if m := st.Status.Metadata; m == nil || m.Placement != storagev1alpha1.MetadataOnDevice || !strings.HasPrefix(m.Location, "device region [") {
		t.Fatalf("Store %s metadata = %+v, want on the device", st.Name, m)
	}
}

// checkStateDirObjects reads back every object TestStoreMountsWithoutItsStateDirectory wrote.
func checkStateDirObjects(ctx context.Context, t *testing.T, cl *nodeclient.Client, id string) {
	t.Helper()
	list, err := cl.Objects.ListObjects(ctx, &nodepb.ListObjectsRequest{StoreUuid: id, Collection: "c"})
	if err != nil || len(list.Objects) != stateDirObjects {
		t.Fatalf("ListObjects = %v, %v; want %d objects", list, err, stateDirObjects)
	}
	for i := range stateDirObjects {
		ref := &nodepb.ObjectRef{Collection: "c", Object: fmt.Sprintf("o%02d", i)}
		want := stateDirObject(i)
		r, err := cl.Objects.Read(ctx, &nodepb.ReadObjectRequest{StoreUuid: id, Ref: ref, Length: int64(len(want)) + 1})
		if err != nil || !bytes.Equal(r.GetData(), want) {
			t.Fatalf("object %s: read %d bytes (%v), want %d bytes as written", ref.Object, len(r.GetData()), err, len(want))
		}
		a, err := cl.Objects.GetAttr(ctx, &nodepb.GetAttrRequest{StoreUuid: id, Ref: ref, Name: "n"})
		if err != nil || string(a.GetValue()) != ref.Object {
			t.Fatalf("object %s: attribute %q (%v)", ref.Object, a.GetValue(), err)
		}
		o, err := cl.Objects.OmapGet(ctx, &nodepb.OmapGetRequest{StoreUuid: id, Ref: ref, Keys: []string{"k"}})
		if err != nil || string(o.GetEntries()["k"]) != ref.Object {
			t.Fatalf("object %s: omap %v (%v)", ref.Object, o.GetEntries(), err)
		}
	}
}
