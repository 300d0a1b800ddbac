package controllers

import (
	"context"
	"errors"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

func newSnapshot(ns, name, volume string) *v1alpha1.Snapshot {
	return &v1alpha1.Snapshot{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1alpha1.SnapshotSpec{VolumeName: volume},
	}
}

// newRestore is a Volume of size made from the Snapshot (kind sourceKindSnapshot) or Volume
// (sourceKindVolume) named from.
func newRestore(ns, name, size, kind, from string) *v1alpha1.Volume {
	v := newVolume(ns, name, size)
	if kind == sourceKindSnapshot {
		v.Spec.Source = &v1alpha1.VolumeSource{SnapshotName: from}
	} else {
		v.Spec.Source = &v1alpha1.VolumeSource{VolumeName: from}
	}
	return v
}

var _ = Describe("Snapshot reconciler, restores and clones", func() {
	var (
		ns      string
		cluster *v1alpha1.StorageCluster
	)
	BeforeEach(func(ctx context.Context) {
		ns = createNamespace(ctx)
		cluster = newFileCluster(ns, "sc")
		Expect(k8sClient.Create(ctx, cluster)).To(Succeed())
		DeferCleanup(func(ctx context.Context) {
			var snaps v1alpha1.SnapshotList
			Expect(k8sClient.List(ctx, &snaps, client.InNamespace(ns))).To(Succeed())
			for i := range snaps.Items {
				deleteAndWait(ctx, &snaps.Items[i])
			}
			deleteVolumesAndStores(ctx, ns)
		})
	})

	getSnapshot := func(ctx context.Context, name string) func(Gomega) *v1alpha1.Snapshot {
		return func(g Gomega) *v1alpha1.Snapshot {
			s := &v1alpha1.Snapshot{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, s)).To(Succeed())
			return s
		}
	}
	snapshotReady := func(ctx context.Context, name string) func(Gomega) metav1.Condition {
		return func(g Gomega) metav1.Condition {
			return condition(getSnapshot(ctx, name)(g).Status.Conditions, v1alpha1.ConditionReady)
		}
	}
	getVolume := func(ctx context.Context, name string) func(Gomega) *v1alpha1.Volume {
		return func(g Gomega) *v1alpha1.Volume {
			v := &v1alpha1.Volume{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, v)).To(Succeed())
			return v
		}
	}
	volumeReady := func(ctx context.Context, name string) func(Gomega) metav1.Condition {
		return func(g Gomega) metav1.Condition {
			return condition(getVolume(ctx, name)(g).Status.Conditions, v1alpha1.ConditionReady)
		}
	}
	// readyVolume creates a Volume and waits until it is created on its node.
	readyVolume := func(ctx context.Context, v *v1alpha1.Volume) *v1alpha1.Volume {
		GinkgoHelper()
		Expect(k8sClient.Create(ctx, v)).To(Succeed())
		Eventually(volumeReady(ctx, v.Name)).Should(HaveField("Status", metav1.ConditionTrue))
		return getVolume(ctx, v.Name)(Default)
	}
	// takenSnapshot creates a Snapshot of volume and waits until it is ready to use.
	takenSnapshot := func(ctx context.Context, name, volume string) *v1alpha1.Snapshot {
		GinkgoHelper()
		Expect(k8sClient.Create(ctx, newSnapshot(ns, name, volume))).To(Succeed())
		Eventually(snapshotReady(ctx, name)).Should(HaveField("Status", metav1.ConditionTrue))
		return getSnapshot(ctx, name)(Default)
	}
	events := func(ctx context.Context) func(Gomega) []eventsv1.Event {
		return func(g Gomega) []eventsv1.Event {
			var evs eventsv1.EventList
			g.Expect(k8sClient.List(ctx, &evs, client.InNamespace(ns))).To(Succeed())
			return evs.Items
		}
	}
	isGone := func(ctx context.Context, obj client.Object) func() bool {
		return func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj))
		}
	}

	It("takes the snapshot once on the volume's store, fills its status and refreshes its sizes", func(ctx context.Context) {
		s := createReadyStore(ctx, cluster, uniqueName("s"), "node-a", "100Gi", "0", nil)
		vol := readyVolume(ctx, newVolume(ns, "data", "10Gi"))

		snap := takenSnapshot(ctx, "snap", "data")
		Expect(snap.Status.ReadyToUse).To(BeTrue())
		Expect(snap.Status.Placement).To(HaveValue(Equal(v1alpha1.VolumePlacement{Store: s.Name, Node: "node-a"})))
		Expect(snap.Status.SourceVolumeID).To(Equal(vol.NodeVolumeID()))
		Expect(snap.Status.CreationTime).To(HaveValue(HaveField("Time", BeTemporally("==", fakeSnapshotTime))))
		Expect(snap.Status.RestoreSize).To(HaveValue(equalQuantity("10Gi")))
		Expect(snap.Status.ReferencedSize).To(HaveValue(equalQuantity("10Gi")))
		Expect(snap.Status.ExclusiveSize).To(HaveValue(equalQuantity("0")))
		Expect(snap.Finalizers).To(ContainElement(SnapshotFinalizer))
		Expect(snap.OwnerReferences).To(BeEmpty(), "a snapshot outlives its source volume")
		Expect(condition(snap.Status.Conditions, v1alpha1.ConditionReady)).To(And(
			HaveField("Reason", v1alpha1.ReasonTaken),
			HaveField("Message", "taken of volume data on store "+s.Name+" of node node-a")))
		held, ok := nodes.Snapshot(s.Name, snap)
		Expect(ok).To(BeTrue(), "the node holds the snapshot under the Snapshot's UID")
		Expect(held.SourceVolumeID).To(Equal(vol.NodeVolumeID()))
		Eventually(events(ctx)).Should(ContainElement(And(HaveField("Regarding.Name", "snap"),
			HaveField("Reason", v1alpha1.ReasonTaken), HaveField("Type", "Normal"),
			HaveField("ReportingController", "snapshot-controller"))))

		By("the source overwriting shared data: the exclusive size follows on the next refresh")
		takes := nodes.Count("snapshot " + s.Name + " " + ns + "/snap")
		nodes.Overwrite(s.Name, snap, 3<<30)
		Eventually(getSnapshot(ctx, "snap"), "5s").Should(HaveField("Status.ExclusiveSize", HaveValue(equalQuantity("3Gi"))))
		Expect(nodes.Count("snapshot "+s.Name+" "+ns+"/snap")).To(Equal(takes), "a taken snapshot is never taken again")
	})

	It("waits for its source volume, then is taken", func(ctx context.Context) {
		Expect(k8sClient.Create(ctx, newSnapshot(ns, "early", "later"))).To(Succeed())
		Eventually(snapshotReady(ctx, "early")).Should(And(
			HaveField("Status", metav1.ConditionFalse), HaveField("Reason", v1alpha1.ReasonVolumeNotReady),
			HaveField("Message", "volume "+ns+"/later does not exist")))
		Expect(getSnapshot(ctx, "early")(Default).Status.ReadyToUse).To(BeFalse())

		By("the volume appearing and becoming Ready: the snapshot is taken without waiting for its backoff")
		createReadyStore(ctx, cluster, uniqueName("s"), "node-a", "100Gi", "0", nil)
		readyVolume(ctx, newVolume(ns, "later", "1Gi"))
		Eventually(snapshotReady(ctx, "early")).Should(HaveField("Reason", v1alpha1.ReasonTaken))
	})

	It("is not taken of a replicated volume, and says why", func(ctx context.Context) {
		createReadyStore(ctx, cluster, uniqueName("s"), "node-a", "100Gi", "0", nil)
		createReadyStore(ctx, cluster, uniqueName("s"), "node-b", "100Gi", "0", nil)
		v := newVolume(ns, "mirrored", "1Gi")
		v.Spec.Replicas = 2
		readyVolume(ctx, v)
		Expect(k8sClient.Create(ctx, newSnapshot(ns, "of-mirrored", "mirrored"))).To(Succeed())
		Eventually(snapshotReady(ctx, "of-mirrored")).Should(And(
			HaveField("Status", metav1.ConditionFalse), HaveField("Reason", v1alpha1.ReasonVolumeNotReady),
			HaveField("Message", "volume "+ns+"/mirrored has 2 replicas: snapshots of replicated volumes are not supported yet")))
		Consistently(getSnapshot(ctx, "of-mirrored"), "500ms").Should(HaveField("Status.ReadyToUse", BeFalse()))
	})

	It("reports a node failure and recovers", func(ctx context.Context) {
		s := createReadyStore(ctx, cluster, uniqueName("s"), "node-a", "100Gi", "0", nil)
		readyVolume(ctx, newVolume(ns, "data", "1Gi"))
		nodes.Fail(s.Name, errors.New("connection refused"))
		DeferCleanup(func() { nodes.Fail(s.Name, nil) })

		Expect(k8sClient.Create(ctx, newSnapshot(ns, "snap", "data"))).To(Succeed())
		Eventually(snapshotReady(ctx, "snap")).Should(And(
			HaveField("Status", metav1.ConditionFalse), HaveField("Reason", v1alpha1.ReasonSnapshotFailed),
			HaveField("Message", And(ContainSubstring("node-a"), ContainSubstring("connection refused")))))
		Eventually(events(ctx)).Should(ContainElement(And(HaveField("Regarding.Name", "snap"),
			HaveField("Reason", v1alpha1.ReasonSnapshotFailed), HaveField("Type", "Warning"))))

		nodes.Fail(s.Name, nil)
		Eventually(snapshotReady(ctx, "snap"), "15s").Should(HaveField("Reason", v1alpha1.ReasonTaken))
		Expect(getSnapshot(ctx, "snap")(Default).Status.ReadyToUse).To(BeTrue())
	})

	It("is deleted on its node before it goes, waiting while the node cannot; a snapshot never taken goes at once", func(ctx context.Context) {
		s := createReadyStore(ctx, cluster, uniqueName("s"), "node-a", "100Gi", "0", nil)
		readyVolume(ctx, newVolume(ns, "data", "1Gi"))
		snap := takenSnapshot(ctx, "snap", "data")

		nodes.Fail(s.Name, errors.New("node unreachable"))
		DeferCleanup(func() { nodes.Fail(s.Name, nil) })
		Expect(k8sClient.Delete(ctx, snap)).To(Succeed())
		Eventually(snapshotReady(ctx, "snap")).Should(And(
			HaveField("Reason", v1alpha1.ReasonDeleteFailed), HaveField("Message", ContainSubstring("node unreachable"))))
		_, held := nodes.Snapshot(s.Name, snap)
		Expect(held).To(BeTrue(), "nothing was deleted yet")

		nodes.Fail(s.Name, nil)
		Eventually(isGone(ctx, snap), "15s").Should(BeTrue())
		_, held = nodes.Snapshot(s.Name, snap)
		Expect(held).To(BeFalse())
		Expect(nodes.Calls()).To(ContainElement("delete-snapshot " + s.Name + " " + ns + "/snap"))

		By("a snapshot of a volume that never existed")
		never := newSnapshot(ns, "never", "missing")
		Expect(k8sClient.Create(ctx, never)).To(Succeed())
		Eventually(getSnapshot(ctx, "never")).Should(HaveField("Finalizers", ContainElement(SnapshotFinalizer)))
		Expect(k8sClient.Delete(ctx, never)).To(Succeed())
		Eventually(isGone(ctx, never)).Should(BeTrue())
		Expect(nodes.Calls()).NotTo(ContainElement(HaveSuffix(" " + ns + "/never")))
	})

	It("survives its source volume, and restores onto the source's store with the snapshot as content source", func(ctx context.Context) {
		s := createReadyStore(ctx, cluster, uniqueName("s"), "node-a", "40Gi", "0", nil)
		readyVolume(ctx, newVolume(ns, "data", "10Gi"))
		snap := takenSnapshot(ctx, "snap", "data")
		big := createReadyStore(ctx, cluster, uniqueName("big"), "node-b", "1Ti", "0", nil)

		deleteAndWait(ctx, getVolume(ctx, "data")(Default))
		Consistently(getSnapshot(ctx, "snap"), "2s").Should(And(
			HaveField("Status.ReadyToUse", BeTrue()),
			HaveField("Status.Conditions", ContainElement(HaveField("Reason", v1alpha1.ReasonTaken)))))
		_, held := nodes.Snapshot(s.Name, snap)
		Expect(held).To(BeTrue())

		restore := readyVolume(ctx, newRestore(ns, "restore", "20Gi", sourceKindSnapshot, "snap"))
		Expect(restore.Spec.StoreName).To(Equal(s.Name), "placed on the snapshot's store although %s has more room", big.Name)
		Expect(nodes.Source(restore)).To(Equal(ContentSource{SnapshotID: snap.NodeSnapshotID()}))
		Expect(restore.Status.AllocatedSize).To(HaveValue(equalQuantity("20Gi")))

		By("a restore pinned to another store")
		pinned := newRestore(ns, "pinned", "10Gi", sourceKindSnapshot, "snap")
		pinned.Spec.StoreName = big.Name
		Expect(k8sClient.Create(ctx, pinned)).To(Succeed())
		Eventually(volumeReady(ctx, "pinned")).Should(And(
			HaveField("Reason", v1alpha1.ReasonUnschedulable),
			HaveField("Message", "storeName "+big.Name+" is not store "+s.Name+", which holds its source snapshot "+ns+
				"/snap: a restore or clone shares its source's data and must be on the same store")))

		By("a restore whose source store has no room")
		Expect(k8sClient.Create(ctx, newRestore(ns, "huge", "100Gi", sourceKindSnapshot, "snap"))).To(Succeed())
		Eventually(volumeReady(ctx, "huge")).Should(And(
			HaveField("Reason", v1alpha1.ReasonUnschedulable),
			HaveField("Message", And(HavePrefix("the volume must be on store "+s.Name+", which holds its source snapshot "+ns+"/snap"),
				ContainSubstring("1 too full")))))
		Consistently(getVolume(ctx, "huge"), "1s").Should(HaveField("Spec.StoreName", BeEmpty()))
	})

	It("waits for its snapshot, and refuses a restore smaller than the snapshot without asking the node", func(ctx context.Context) {
		s := createReadyStore(ctx, cluster, uniqueName("s"), "node-a", "100Gi", "0", nil)
		Expect(k8sClient.Create(ctx, newRestore(ns, "small", "5Gi", sourceKindSnapshot, "snap"))).To(Succeed())
		Eventually(volumeReady(ctx, "small")).Should(And(
			HaveField("Status", metav1.ConditionFalse), HaveField("Reason", v1alpha1.ReasonSourceNotReady),
			HaveField("Message", "snapshot "+ns+"/snap does not exist")))

		readyVolume(ctx, newVolume(ns, "data", "10Gi"))
		takenSnapshot(ctx, "snap", "data")
		Eventually(volumeReady(ctx, "small")).Should(And(
			HaveField("Reason", v1alpha1.ReasonSourceTooLarge),
			HaveField("Message", "the volume's size 5Gi is smaller than its source snapshot "+ns+"/snap (10Gi): ask for at least 10Gi")))
		Consistently(getVolume(ctx, "small"), "1s").Should(HaveField("Spec.StoreName", BeEmpty()))
		Expect(nodes.Calls()).NotTo(ContainElement("create " + s.Name + " " + ns + "/small"))

		By("growing it to the snapshot's size")
		Eventually(func() error {
			v := getVolume(ctx, "small")(Default)
			v.Spec.Size = resource.MustParse("10Gi")
			return k8sClient.Update(ctx, v)
		}).Should(Succeed())
		Eventually(volumeReady(ctx, "small")).Should(HaveField("Reason", v1alpha1.ReasonProvisioned))
		Expect(getVolume(ctx, "small")(Default).Spec.StoreName).To(Equal(s.Name))
	})

	It("clones a Ready volume onto its store with the volume as content source", func(ctx context.Context) {
		s := createReadyStore(ctx, cluster, uniqueName("s"), "node-a", "40Gi", "0", nil)
		createReadyStore(ctx, cluster, uniqueName("big"), "node-b", "1Ti", "0", nil)
		var src *v1alpha1.Volume
		Expect(k8sClient.Create(ctx, newRestore(ns, "clone", "8Gi", sourceKindVolume, "src"))).To(Succeed())
		Eventually(volumeReady(ctx, "clone")).Should(And(
			HaveField("Reason", v1alpha1.ReasonSourceNotReady), HaveField("Message", "volume "+ns+"/src does not exist")))

		src = newVolume(ns, "src", "8Gi")
		src.Spec.StoreName = s.Name
		src = readyVolume(ctx, src)
		Eventually(volumeReady(ctx, "clone")).Should(HaveField("Reason", v1alpha1.ReasonProvisioned))
		clone := getVolume(ctx, "clone")(Default)
		Expect(clone.Spec.StoreName).To(Equal(s.Name))
		Expect(nodes.Source(clone)).To(Equal(ContentSource{VolumeID: src.NodeVolumeID()}))

		Expect(k8sClient.Create(ctx, newRestore(ns, "tiny", "1Gi", sourceKindVolume, "src"))).To(Succeed())
		Eventually(volumeReady(ctx, "tiny")).Should(And(HaveField("Reason", v1alpha1.ReasonSourceTooLarge),
			HaveField("Message", "the volume's size 1Gi is smaller than its source volume "+ns+"/src (8Gi): ask for at least 8Gi")))

		By("deleting the source: the clone stays")
		deleteAndWait(ctx, src)
		Consistently(volumeReady(ctx, "clone"), "1s").Should(HaveField("Reason", v1alpha1.ReasonProvisioned))
		_, held := nodes.Allocated(s.Name, clone)
		Expect(held).To(BeTrue())
	})

	It("keeps a deleted Store until the Snapshots it holds are gone", func(ctx context.Context) {
		s := createReadyStore(ctx, cluster, uniqueName("s"), "node-a", "100Gi", "0", nil)
		readyVolume(ctx, newVolume(ns, "data", "1Gi"))
		takenSnapshot(ctx, "snap-a", "data")
		takenSnapshot(ctx, "snap-b", "data")
		deleteAndWait(ctx, getVolume(ctx, "data")(Default))

		Expect(k8sClient.Delete(ctx, s)).To(Succeed())
		getStore := func(g Gomega) *v1alpha1.Store {
			st := &v1alpha1.Store{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(s), st)).To(Succeed())
			return st
		}
		Eventually(func(g Gomega) metav1.Condition {
			return condition(getStore(g).Status.Conditions, v1alpha1.ConditionReady)
		}).Should(And(HaveField("Reason", v1alpha1.ReasonDeletionBlocked),
			HaveField("Message", "deletion waits for 2 Snapshot(s) held on this store: "+ns+"/snap-a, "+ns+"/snap-b")))
		Consistently(getStore, "1s").ShouldNot(BeNil())

		deleteAndWait(ctx, getSnapshot(ctx, "snap-a")(Default))
		Eventually(func(g Gomega) string {
			return condition(getStore(g).Status.Conditions, v1alpha1.ConditionReady).Message
		}).Should(Equal("deletion waits for 1 Snapshot(s) held on this store: " + ns + "/snap-b"))
		deleteAndWait(ctx, getSnapshot(ctx, "snap-b")(Default))
		Eventually(isGone(ctx, s)).Should(BeTrue())
	})

	It("says so when the Store holding it is gone, and then goes without asking a node", func(ctx context.Context) {
		s := createReadyStore(ctx, cluster, uniqueName("s"), "node-a", "100Gi", "0", nil)
		readyVolume(ctx, newVolume(ns, "data", "1Gi"))
		snap := takenSnapshot(ctx, "snap", "data")
		deleteAndWait(ctx, getVolume(ctx, "data")(Default))

		By("an administrator forcing the Store away past its finalizer")
		Expect(k8sClient.Delete(ctx, s)).To(Succeed())
		Eventually(func() error {
			st := &v1alpha1.Store{}
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(s), st); err != nil {
				return err
			}
			st.Finalizers = nil
			return k8sClient.Update(ctx, st)
		}).Should(Succeed())
		Eventually(isGone(ctx, s)).Should(BeTrue())

		Eventually(snapshotReady(ctx, "snap")).Should(And(
			HaveField("Status", metav1.ConditionFalse), HaveField("Reason", v1alpha1.ReasonSnapshotFailed),
			HaveField("Message", "store "+s.Name+" that held the snapshot no longer exists: its data is gone")))
		Expect(getSnapshot(ctx, "snap")(Default).Status.ReadyToUse).To(BeFalse())

		By("a restore from it waits, saying why")
		Expect(k8sClient.Create(ctx, newRestore(ns, "restore", "1Gi", sourceKindSnapshot, "snap"))).To(Succeed())
		Eventually(volumeReady(ctx, "restore")).Should(And(HaveField("Reason", v1alpha1.ReasonSourceNotReady),
			HaveField("Message", "snapshot "+ns+"/snap is not ready to use yet: store "+s.Name+" that held the snapshot no longer exists: its data is gone")))

		deleteAndWait(ctx, snap)
		Expect(nodes.Calls()).NotTo(ContainElement("delete-snapshot " + s.Name + " " + ns + "/snap"))
	})
})
