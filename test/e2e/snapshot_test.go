//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
)

// The snapshot steps use the snapshot.storage.k8s.io API (v1) as users do, through unstructured
// objects: the suite needs no client library of external-snapshotter.
const (
	snapshotGroup   = "snapshot.storage.k8s.io"
	snapshotClass   = "cobalt"
	snapshotName    = "snap-1"
	snapSource      = "snap-src"
	snapRestored    = "snap-restored"
	snapClone       = "snap-clone"
	snapPayload     = "payload"
	snapPayloadSize = 8 << 20
	snapClaimSize   = "128Mi"
	// snapshotControllerLease is the leader election Lease of the chart's snapshot-controller.
	snapshotControllerLease = "snapshot-controller-leader"
)

var (
	volumeSnapshotGVK        = schema.GroupVersionKind{Group: snapshotGroup, Version: "v1", Kind: "VolumeSnapshot"}
	volumeSnapshotContentGVK = schema.GroupVersionKind{Group: snapshotGroup, Version: "v1", Kind: "VolumeSnapshotContent"}
	volumeSnapshotClassGVK   = schema.GroupVersionKind{Group: snapshotGroup, Version: "v1", Kind: "VolumeSnapshotClass"}
	// snapshotCRDs are the CRDs the chart's crds/ installs when the cluster has none, and that
	// helm uninstall keeps (as it keeps Cobalt's).
	snapshotCRDs = []string{"volumesnapshotclasses." + snapshotGroup, "volumesnapshotcontents." + snapshotGroup, "volumesnapshots." + snapshotGroup}
)

// newObject returns an empty unstructured object of gvk.
func newObject(gvk schema.GroupVersionKind) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	return u
}

// newList returns an empty unstructured list of gvk's kind.
func newList(gvk schema.GroupVersionKind) *unstructured.UnstructuredList {
	l := &unstructured.UnstructuredList{}
	l.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	return l
}

// restoredClaim is a claim of class cobalt whose content comes from dataSource.
func restoredClaim(name string, dataSource corev1.TypedLocalObjectReference) *corev1.PersistentVolumeClaim {
	pvc := claim(name, "cobalt", snapClaimSize, corev1.PersistentVolumeFilesystem)
	pvc.Spec.DataSource = &dataSource
	return pvc
}

// payloadLine waits for pod to print READY and returns what it printed after word (FOUND or WROTE).
func payloadLine(ctx context.Context, pod, word string) string {
	GinkgoHelper()
	lines := logLines(waitLogLine(ctx, pod, "READY", 4*time.Minute), word)
	Expect(lines).To(HaveLen(1), "pod %s printed %s %d times", pod, word, len(lines))
	return lines[0]
}

// settledUsed returns the Store's used bytes once two heartbeats in a row report the same value,
// so that frees still under way from earlier steps do not count.
func settledUsed(ctx context.Context) int64 {
	GinkgoHelper()
	var lastBeat time.Time
	var lastUsed int64 = -1
	var used int64
	Eventually(func(g Gomega) {
		st := readyStore(g, ctx, s.usable.path)
		beat, u := st.Status.LastHeartbeat.Time, st.Status.Used.Value()
		if beat.After(lastBeat) {
			prev := lastUsed
			lastBeat, lastUsed = beat, u
			g.Expect(u).To(Equal(prev), "Store used bytes still changing")
			used = u
			return
		}
		g.Expect(fmt.Errorf("waiting for the next heartbeat (last %s, used %d)", lastBeat.Format(time.RFC3339), lastUsed)).NotTo(HaveOccurred())
	}).WithContext(ctx).WithTimeout(3 * time.Minute).WithPolling(2 * time.Second).Should(Succeed())
	return used
}

// showSnapshots prints what a user would look at: VolumeSnapshots and their contents, and
// Cobalt's Snapshots and Volumes.
func showSnapshots(ctx context.Context) {
	for _, what := range []string{"volumesnapshots,volumesnapshotcontents", "snapshots.storage.cobalt.io,volumes.storage.cobalt.io"} {
		out, err := run(ctx, "kubectl", "--kubeconfig", s.env.kubeconfig, "get", what, "-A", "-o", "wide")
		if err != nil {
			out = err.Error()
		}
		GinkgoWriter.Printf("$ kubectl get %s -A -o wide\n%s\n", what, out)
	}
}

// cobaltSnapshotsOf lists Cobalt's Snapshots of Volume vol.
func cobaltSnapshotsOf(g Gomega, ctx context.Context, vol string) []storagev1alpha1.Snapshot {
	var snaps storagev1alpha1.SnapshotList
	g.Expect(s.c.List(ctx, &snaps)).To(Succeed())
	return slices.DeleteFunc(snaps.Items, func(sn storagev1alpha1.Snapshot) bool { return sn.Spec.VolumeName != vol })
}

// snapshotSteps take a VolumeSnapshot of a claim a Pod wrote, restore it and clone the live claim,
// and delete it all again: the snapshot.storage.k8s.io API served by the chart's CRDs and
// snapshot-controller, csi-snapshotter next to the operator, and the controller plugin's snapshot
// and clone support. They run after the CSI steps (whose namespace is deleted by then, so the
// Store's used space is steady) and before the uninstall.
func snapshotSteps() {
	var (
		usedBefore int64
		srcVolume  string
		oldSum     string // what the Pod wrote before the snapshot
		newSum     string // what it overwrote it with after
	)

	It("14: snapshots: CRDs, snapshot-controller, csi-snapshotter and VolumeSnapshotClass cobalt are installed; a VolumeSnapshot of a claim a Pod wrote becomes readyToUse; the Pod overwrites the data", func(ctx SpecContext) {
		for _, name := range snapshotCRDs {
			var crd apiextensionsv1.CustomResourceDefinition
			Expect(s.c.Get(ctx, types.NamespacedName{Name: name}, &crd)).To(Succeed(), "CRD %s (the chart's crds/)", name)
		}
		vsc := newObject(volumeSnapshotClassGVK)
		Expect(s.c.Get(ctx, types.NamespacedName{Name: snapshotClass}, vsc)).To(Succeed())
		Expect(vsc.Object["driver"]).To(Equal(driverName))
		Expect(vsc.Object["deletionPolicy"]).To(Equal("Delete"))
		Eventually(func(g Gomega) {
			pods, err := podsWith(ctx, map[string]string{"app.kubernetes.io/component": "snapshot-controller"})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(pods).To(HaveLen(1), "snapshot-controller pods")
			g.Expect(podReady(&pods[0])).To(BeTrue(), "snapshot-controller pod %s: %s", pods[0].Name, podSummary(&pods[0]))
			// It leads on the Lease the chart rendered (so that uninstalling removes it).
			var lease coordinationv1.Lease
			g.Expect(s.c.Get(ctx, types.NamespacedName{Namespace: releaseNamespace, Name: snapshotControllerLease}, &lease)).To(Succeed())
			g.Expect(lease.Labels).To(HaveKeyWithValue("app.kubernetes.io/managed-by", "Helm"), "Lease %s", snapshotControllerLease)
			g.Expect(lease.Spec.HolderIdentity).To(HaveValue(Equal(pods[0].Name)), "holder of Lease %s", snapshotControllerLease)
			var dep appsv1.Deployment
			g.Expect(s.c.Get(ctx, types.NamespacedName{Namespace: releaseNamespace, Name: releaseName + "-snapshot-controller"}, &dep)).To(Succeed())
			ops, err := podsWith(ctx, map[string]string{"app.kubernetes.io/component": "operator"})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(ops).To(HaveLen(1), "operator pods")
			g.Expect(ops[0].Status.ContainerStatuses).To(ContainElement(And(HaveField("Name", "csi-snapshotter"), HaveField("Ready", BeTrue()))),
				"the csi-snapshotter sidecar of %s: %s", ops[0].Name, podSummary(&ops[0]))
		}).WithContext(ctx).WithTimeout(2 * time.Minute).WithPolling(time.Second).Should(Succeed())

		// The CSI steps' namespace goes with everything in it; this step starts from a Store
		// whose used space no longer moves, and reuses the namespace.
		Eventually(func() bool {
			return apierrors.IsNotFound(s.c.Get(ctx, types.NamespacedName{Name: appNamespace}, &corev1.Namespace{}))
		}).WithContext(ctx).WithTimeout(3*time.Minute).WithPolling(2*time.Second).Should(BeTrue(), "namespace %s still exists", appNamespace)
		usedBefore = settledUsed(ctx)
		Expect(s.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: appNamespace}})).To(Succeed())

		size := strconv.Itoa(snapPayloadSize)
		Expect(s.c.Create(ctx, claim(snapSource, "cobalt", snapClaimSize, corev1.PersistentVolumeFilesystem))).To(Succeed())
		Expect(s.c.Create(ctx, workloadPod("snap-v1", snapSource, false, "overwrite", "/data", snapPayload, size))).To(Succeed())
		Expect(payloadLine(ctx, "snap-v1", "FOUND")).To(Equal("none"), "a new claim has no payload")
		oldSum = payloadLine(ctx, "snap-v1", "WROTE")
		Eventually(func(g Gomega) { srcVolume = volumeOfClaim(g, ctx, snapSource).Name }).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed())
		GinkgoWriter.Printf("Store used %d bytes before; %s (Volume %s) holds %d bytes with sha256 %s, fsync'd\n", usedBefore, snapSource, srcVolume, snapPayloadSize, oldSum)

		// The snapshot is taken while the Pod still has the claim mounted: what it fsync'd is in it.
		vs := newObject(volumeSnapshotGVK)
		vs.SetNamespace(appNamespace)
		vs.SetName(snapshotName)
		vs.Object["spec"] = map[string]any{
			"volumeSnapshotClassName": snapshotClass,
			"source":                  map[string]any{"persistentVolumeClaimName": snapSource},
		}
		Expect(s.c.Create(ctx, vs)).To(Succeed())
		var contentName string
		Eventually(func(g Gomega) {
			got := newObject(volumeSnapshotGVK)
			g.Expect(s.c.Get(ctx, types.NamespacedName{Namespace: appNamespace, Name: snapshotName}, got)).To(Succeed())
			status, _, _ := unstructured.NestedMap(got.Object, "status")
			g.Expect(status).To(HaveKeyWithValue("readyToUse", true), "VolumeSnapshot %s status %v; events %v", snapshotName, status, claimEvents(ctx, snapshotName))
			contentName, _, _ = unstructured.NestedString(got.Object, "status", "boundVolumeSnapshotContentName")
			g.Expect(contentName).NotTo(BeEmpty())
		}).WithContext(ctx).WithTimeout(3 * time.Minute).WithPolling(2 * time.Second).Should(Succeed())
		content := newObject(volumeSnapshotContentGVK)
		Expect(s.c.Get(ctx, types.NamespacedName{Name: contentName}, content)).To(Succeed())
		for field, want := range map[string]string{"driver": driverName, "deletionPolicy": "Delete"} {
			got, _, _ := unstructured.NestedString(content.Object, "spec", field)
			Expect(got).To(Equal(want), "VolumeSnapshotContent %s spec.%s", contentName, field)
		}
		handle, _, _ := unstructured.NestedString(content.Object, "status", "snapshotHandle")
		Expect(handle).NotTo(BeEmpty(), "VolumeSnapshotContent %s has no snapshotHandle", contentName)
		// Behind it, one Cobalt Snapshot of the claim's Volume, taken on its Store.
		Eventually(func(g Gomega) {
			snaps := cobaltSnapshotsOf(g, ctx, srcVolume)
			g.Expect(snaps).To(HaveLen(1), "Cobalt Snapshots of Volume %s", srcVolume)
			g.Expect(snaps[0].Status.ReadyToUse).To(BeTrue(), "Snapshot %s status %+v", snaps[0].Name, snaps[0].Status)
			g.Expect(snaps[0].Status.Placement).NotTo(BeNil())
			g.Expect(snaps[0].Status.Placement.Store).To(Equal(storeOn(g, ctx, s.usable.path).Name))
		}).WithContext(ctx).WithTimeout(time.Minute).WithPolling(time.Second).Should(Succeed())
		GinkgoWriter.Printf("VolumeSnapshot %s readyToUse: content %s, handle %s\n", snapshotName, contentName, handle)
		showSnapshots(ctx)

		// The Pod goes; a new one finds the payload as written and overwrites it in place.
		Expect(s.c.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: appNamespace, Name: "snap-v1"}})).To(Succeed())
		expectGone(ctx, &corev1.Pod{}, types.NamespacedName{Namespace: appNamespace, Name: "snap-v1"}, 2*time.Minute)
		Expect(s.c.Create(ctx, workloadPod("snap-v2", snapSource, false, "overwrite", "/data", snapPayload, size))).To(Succeed())
		Expect(payloadLine(ctx, "snap-v2", "FOUND")).To(Equal(oldSum), "the payload after the snapshot, before the overwrite")
		newSum = payloadLine(ctx, "snap-v2", "WROTE")
		Expect(newSum).NotTo(Equal(oldSum))
		GinkgoWriter.Printf("%s overwritten: sha256 %s\n", snapSource, newSum)
	}, SpecTimeout(10*time.Minute))

	It("15: a claim restored from the VolumeSnapshot shows the old data in a new Pod; a claim cloned from the live claim shows the new data", func(ctx SpecContext) {
		Expect(s.c.Create(ctx, restoredClaim(snapRestored, corev1.TypedLocalObjectReference{
			APIGroup: ptr.To(snapshotGroup), Kind: "VolumeSnapshot", Name: snapshotName,
		}))).To(Succeed())
		Expect(s.c.Create(ctx, workloadPod(snapRestored, snapRestored, false, "overwrite", "/data", snapPayload, "0"))).To(Succeed())
		// The clone is taken while snap-v2 still has the source mounted.
		Expect(s.c.Create(ctx, restoredClaim(snapClone, corev1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: snapSource}))).To(Succeed())
		Expect(s.c.Create(ctx, workloadPod(snapClone, snapClone, false, "overwrite", "/data", snapPayload, "0"))).To(Succeed())

		Expect(payloadLine(ctx, snapRestored, "FOUND")).To(Equal(oldSum), "the payload of the claim restored from %s", snapshotName)
		Expect(payloadLine(ctx, snapClone, "FOUND")).To(Equal(newSum), "the payload of the claim cloned from %s", snapSource)
		// Behind them, Volumes made from Cobalt's Snapshot and from the source Volume.
		Eventually(func(g Gomega) {
			snaps := cobaltSnapshotsOf(g, ctx, srcVolume)
			g.Expect(snaps).To(HaveLen(1), "Cobalt Snapshots of Volume %s", srcVolume)
			restored := volumeOfClaim(g, ctx, snapRestored)
			g.Expect(restored.Spec.Source).To(HaveValue(HaveField("SnapshotName", snaps[0].Name)), "source of the restored Volume %s", restored.Name)
			clone := volumeOfClaim(g, ctx, snapClone)
			g.Expect(clone.Spec.Source).To(HaveValue(HaveField("VolumeName", srcVolume)), "source of the cloned Volume %s", clone.Name)
		}).WithContext(ctx).WithTimeout(time.Minute).WithPolling(time.Second).Should(Succeed())
		GinkgoWriter.Printf("restored from %s: sha256 %s (as before the overwrite); cloned from %s: sha256 %s (as after)\n", snapshotName, oldSum, snapSource, newSum)
		showSnapshots(ctx)
	}, SpecTimeout(8*time.Minute))

	It("16: deleting the Pods, the VolumeSnapshot and the claims deletes the VolumeSnapshotContent, Cobalt's Snapshot and Volumes, and returns the Store's used space to what it was before", func(ctx SpecContext) {
		for _, pod := range []string{"snap-v2", snapRestored, snapClone} {
			Expect(s.c.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: appNamespace, Name: pod}})).To(Succeed())
		}
		for _, pvc := range []string{snapRestored, snapClone} {
			Expect(s.c.Delete(ctx, &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: appNamespace, Name: pvc}})).To(Succeed())
		}
		vs := newObject(volumeSnapshotGVK)
		vs.SetNamespace(appNamespace)
		vs.SetName(snapshotName)
		Expect(s.c.Delete(ctx, vs)).To(Succeed())
		Expect(s.c.Delete(ctx, &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: appNamespace, Name: snapSource}})).To(Succeed())

		Eventually(func(g Gomega) {
			for _, gvk := range []schema.GroupVersionKind{volumeSnapshotGVK, volumeSnapshotContentGVK} {
				l := newList(gvk)
				g.Expect(s.c.List(ctx, l)).To(Succeed())
				g.Expect(mustItems(l)).To(BeEmpty(), "%ss left", gvk.Kind)
			}
			var snaps storagev1alpha1.SnapshotList
			g.Expect(s.c.List(ctx, &snaps)).To(Succeed())
			g.Expect(mustItems(&snaps)).To(BeEmpty(), "Cobalt Snapshots left")
			var vols storagev1alpha1.VolumeList
			g.Expect(s.c.List(ctx, &vols, client.InNamespace(releaseNamespace))).To(Succeed())
			var csiVols []string
			for _, v := range vols.Items {
				if v.Annotations[storagev1alpha1.KeyPVCName] != "" {
					csiVols = append(csiVols, v.Name)
				}
			}
			g.Expect(csiVols).To(BeEmpty(), "Volumes of deleted claims")
			var pvs corev1.PersistentVolumeList
			g.Expect(s.c.List(ctx, &pvs)).To(Succeed())
			g.Expect(mustItems(&pvs)).To(BeEmpty(), "PersistentVolumes left")
		}).WithContext(ctx).WithTimeout(4 * time.Minute).WithPolling(2 * time.Second).Should(Succeed())
		showSnapshots(ctx)

		var usedAfter int64
		Eventually(func(g Gomega) {
			usedAfter = readyStore(g, ctx, s.usable.path).Status.Used.Value()
			g.Expect(usedAfter).To(BeNumerically("<=", usedBefore), "Store used bytes after everything of the snapshot steps went (before them: %d)", usedBefore)
		}).WithContext(ctx).WithTimeout(2 * time.Minute).WithPolling(2 * time.Second).Should(Succeed())
		Expect(s.c.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: appNamespace}})).To(Succeed())
		GinkgoWriter.Printf("snapshot, restore and clone deleted: Store used %d bytes, %d before the snapshot steps\n", usedAfter, usedBefore)
	}, SpecTimeout(8*time.Minute))
}
