package integration

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/types"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/store"
)

// TestStoreOfAnotherClusterIsRefused: two Cobalt clusters (two StorageClusters, so two cluster
// identities) see the same device. Cluster A's daemon makes a store on it and writes an object.
// Cluster B's daemon neither mounts nor writes it: its Store says the device holds a store of
// cluster A, naming A's ID and what to do, and a StoreOfAnotherCluster event says the same. With
// spec.devices.allowWipe (the device is listed in spec.devices.paths) B's daemon wipes it into a
// store of its own; A's daemon then refuses that one in turn.
func TestStoreOfAnotherClusterIsRefused(t *testing.T) {
	ctx := context.Background()
	a, b := newCluster(t), newCluster(t)
	dev := newDevice(t, 128<<20, 0, nil)

	cfgA := a.daemonConfig(t, "node-a", dev)
	uidA := clusterUID(t, a)
	d := startInProcess(t, cfgA)
	st := servingStore(t, "node-a", dev, "")
	idA := st.Status.UUID
	cl := a.client(t, st.Annotations[storagev1alpha1.AnnotationNodeEndpoint])
	ref := &nodepb.ObjectRef{Collection: "c", Object: "o"}
	if _, err := cl.Objects.Commit(ctx, &nodepb.CommitRequest{StoreUuid: idA, Ops: []*nodepb.Op{
		{Op: &nodepb.Op_CreateCollection{CreateCollection: &nodepb.CreateCollectionOp{Collection: "c"}}},
		{Op: &nodepb.Op_Write{Write: &nodepb.WriteOp{Ref: ref, Data: []byte("cluster A's data")}}},
	}}); err != nil {
		t.Fatal(err)
	}
	d.stop(t)
	if l := deviceLabel(t, dev); l.ClusterIDString() != uidA || l.Version != 3 {
		t.Fatalf("cluster A's store has label %+v, want version 3 naming cluster %s", l, uidA)
	}
	before := deviceStart(t, dev)

	// Cluster B, without allowWipe: the device is left alone and reported.
	cfgB := b.daemonConfig(t, "node-b", dev)
	uidB := clusterUID(t, b)
	cfgB.ClusterUID = uidB // as the operator's DaemonSet passes it
	d = startInProcess(t, cfgB)
	stB := notUsedStore(t, "node-b", dev)
	for _, want := range []string{"store " + idA, "another Cobalt cluster", "cluster ID " + uidA, "this cluster is " + uidB, "allowWipe"} {
		if !strings.Contains(stB.Status.NotUsedReason, want) {
			t.Fatalf("Store %s: notUsedReason %q does not say %q", stB.Name, stB.Status.NotUsedReason, want)
		}
	}
	if stB.Status.UUID != "" || stB.Status.Capacity != nil {
		t.Fatalf("Store %s serves a store: %+v", stB.Name, stB.Status)
	}
	waitEvent(t, stB.Name, "StoreOfAnotherCluster", uidA)
	d.stop(t)
	if after := deviceStart(t, dev); !bytes.Equal(before, after) {
		t.Fatal("cluster B's daemon wrote to cluster A's device")
	}

	// Cluster B allows wiping its listed devices: the device becomes a store of cluster B.
	allowWipe(t, b)
	d = startInProcess(t, cfgB)
	stB = servingStore(t, "node-b", dev, "")
	if stB.Status.UUID == idA {
		t.Fatalf("cluster B serves cluster A's store %s", idA)
	}
	if l := deviceLabel(t, dev); l.ClusterIDString() != uidB || l.UUIDString() != stB.Status.UUID {
		t.Fatalf("after the wipe the label is %+v, want store %s of cluster %s", l, stB.Status.UUID, uidB)
	}
	waitEvent(t, stB.Name, "StoreCreated", uidA)
	d.stop(t)

	// And cluster A now refuses cluster B's store.
	d = startInProcess(t, cfgA)
	stA := notUsedStore(t, "node-a", dev)
	if !strings.Contains(stA.Status.NotUsedReason, "cluster ID "+uidB) {
		t.Fatalf("cluster A: notUsedReason %q does not name cluster B (%s)", stA.Status.NotUsedReason, uidB)
	}
	d.stop(t)
}

// TestStoreWithoutClusterIsAdopted: a store made before labels named a cluster (label version 2,
// metadata on the device) is adopted by the first cluster whose daemon mounts it: the daemon
// records the cluster in its label and serves it with its data; another cluster then refuses it.
func TestStoreWithoutClusterIsAdopted(t *testing.T) {
	ctx := context.Background()
	dev := newDevice(t, 128<<20, 0, nil)
	bd, err := blockdev.Open(dev, blockdev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := store.Mkfs(ctx, bd, "", store.MkfsOptions{}) // no cluster: label version 2
	if err == nil {
		var st *store.Store
		if st, err = store.Open(ctx, bd, "", store.Options{}); err == nil {
			err = st.Commit(ctx, store.NewTransaction().CreateCollection("c").Write("c", "o", 0, []byte("made before cluster IDs")))
			err = errors.Join(err, st.Close())
		}
	}
	if err = errors.Join(err, bd.Close()); err != nil {
		t.Fatal(err)
	}
	if l := deviceLabel(t, dev); l.Version != 2 || l.HasCluster() {
		t.Fatalf("label %+v, want version 2 without a cluster", l)
	}

	a := newCluster(t)
	d := startInProcess(t, a.daemonConfig(t, "node-a", dev))
	uidA := clusterUID(t, a)
	st := servingStore(t, "node-a", dev, "")
	if st.Status.UUID != id {
		t.Fatalf("serving store %s, want the adopted %s", st.Status.UUID, id)
	}
	r, err := a.client(t, st.Annotations[storagev1alpha1.AnnotationNodeEndpoint]).Objects.Read(ctx,
		&nodepb.ReadObjectRequest{StoreUuid: id, Ref: &nodepb.ObjectRef{Collection: "c", Object: "o"}, Length: 100})
	if err != nil || string(r.GetData()) != "made before cluster IDs" {
		t.Fatalf("read the adopted store's object: %q, %v", r.GetData(), err)
	}
	waitEvent(t, st.Name, "StoreAdopted", id)
	d.stop(t)
	if l := deviceLabel(t, dev); l.Version != 3 || l.ClusterIDString() != uidA || l.UUIDString() != id {
		t.Fatalf("label after adoption %+v, want version 3 of store %s naming cluster %s", l, id, uidA)
	}

	b := newCluster(t)
	d = startInProcess(t, b.daemonConfig(t, "node-b", dev))
	if stB := notUsedStore(t, "node-b", dev); !strings.Contains(stB.Status.NotUsedReason, "cluster ID "+uidA) {
		t.Fatalf("another cluster: notUsedReason %q does not name the adopting cluster %s", stB.Status.NotUsedReason, uidA)
	}
	d.stop(t)
}

// clusterUID is the UID of c's StorageCluster: the cluster identity its daemons record.
func clusterUID(t *testing.T, c *cluster) string {
	t.Helper()
	sc := &storagev1alpha1.StorageCluster{}
	if err := k8sClient.Get(context.Background(), types.NamespacedName{Namespace: c.namespace, Name: "test"}, sc); err != nil {
		t.Fatal(err)
	}
	return string(sc.UID)
}

// allowWipe sets spec.devices.allowWipe on c's StorageCluster (whose devices are explicit paths).
func allowWipe(t *testing.T, c *cluster) {
	t.Helper()
	sc := &storagev1alpha1.StorageCluster{}
	key := types.NamespacedName{Namespace: c.namespace, Name: "test"}
	if err := k8sClient.Get(context.Background(), key, sc); err != nil {
		t.Fatal(err)
	}
	sc.Spec.Devices.AllowWipe = true
	if err := k8sClient.Update(context.Background(), sc); err != nil {
		t.Fatal(err)
	}
}

// notUsedStore waits until the Store of node's device says why the device is not used.
func notUsedStore(t *testing.T, node, device string) *storagev1alpha1.Store {
	t.Helper()
	var st *storagev1alpha1.Store
	gomega.NewWithT(t).Eventually(func() error {
		var err error
		if st, err = storeOf(node, device); err != nil {
			return err
		}
		if st.Status.NotUsedReason == "" {
			return errors.New("no notUsedReason yet")
		}
		return nil
	}, 60*time.Second, 100*time.Millisecond).Should(gomega.Succeed())
	return st
}

// waitEvent waits for an event of reason on the Store named store whose note contains text.
func waitEvent(t *testing.T, storeName, reason, text string) {
	t.Helper()
	gomega.NewWithT(t).Eventually(func() error {
		var evs eventsv1.EventList
		if err := k8sClient.List(context.Background(), &evs); err != nil {
			return err
		}
		for _, ev := range evs.Items {
			if ev.Regarding.Name == storeName && ev.Reason == reason && strings.Contains(ev.Note, text) {
				return nil
			}
		}
		return errors.New("no " + reason + " event on Store " + storeName + " naming " + text)
	}, 30*time.Second, 100*time.Millisecond).Should(gomega.Succeed())
}

// deviceLabel reads the store label on device.
func deviceLabel(t *testing.T, device string) blockdev.Label {
	t.Helper()
	dev, err := blockdev.Open(device, blockdev.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	l, err := blockdev.ReadLabel(dev)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// deviceStart reads the label area and the start of the metadata region of device, which any
// write by a daemon (a label rewrite, a mount's journal replay) would change.
func deviceStart(t *testing.T, device string) []byte {
	t.Helper()
	dev, err := blockdev.Open(device, blockdev.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	buf := blockdev.AlignedBuffer(16 << 20)
	if _, err := dev.ReadAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	return buf
}
