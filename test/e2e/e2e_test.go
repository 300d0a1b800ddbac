//go:build e2e

package e2e

import (
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
)

// written is a range of a volume the suite wrote and the CLI acknowledged.
type written struct {
	offset, size int64
	sum          string
}

const (
	volumeA     = "vol-a"
	dataASize   = int64(8 << 20)
	chunkSize   = int64(256 << 10)
	streamBase  = int64(64 << 20)
	volumeASize = "256Mi"
)

var _ = Describe("Cobalt on a real single-node cluster", Ordered, func() {
	// What later steps check again: the store's identity and the data written so far.
	var (
		storeUUID string
		dataA     written   // step 3: 8 MiB through the CLI
		streamed  []written // step 4: the acknowledged writes of the write stream
	)

	It("1: helm install; the operator pod is Ready and elects a leader", func(ctx SpecContext) {
		rel, err := s.helm.install(ctx, chartValues(false, ""))
		Expect(err).NotTo(HaveOccurred())
		GinkgoWriter.Printf("release %s revision %d: %s\n", rel.Name, rel.Version, rel.Info.Status)

		var operator corev1.Pod
		Eventually(func(g Gomega) {
			pods, err := podsWith(ctx, map[string]string{"app.kubernetes.io/component": "operator"})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(pods).To(HaveLen(1), "operator pods")
			operator = pods[0]
			g.Expect(podReady(&operator)).To(BeTrue(), "operator pod %s not Ready: %s", operator.Name, podSummary(&operator))
		}).WithContext(ctx).WithTimeout(2 * time.Minute).WithPolling(time.Second).Should(Succeed())

		// controller-runtime's identity is <hostname>_<uuid>, and a pod's hostname is its name.
		Eventually(func(g Gomega) {
			var lease coordinationv1.Lease
			g.Expect(s.c.Get(ctx, types.NamespacedName{Namespace: releaseNamespace, Name: leaseName}, &lease)).To(Succeed())
			g.Expect(lease.Spec.HolderIdentity).NotTo(BeNil())
			g.Expect(*lease.Spec.HolderIdentity).To(HavePrefix(operator.Name+"_"), "lease holder")
		}).WithContext(ctx).WithTimeout(time.Minute).WithPolling(time.Second).Should(Succeed())
		GinkgoWriter.Printf("operator %s is Ready and holds lease %s\n", operator.Name, leaseName)

		// The CA and the Lease the operator created are owned by its ServiceAccount, so helm
		// uninstall removes them.
		var ca corev1.Secret
		Expect(s.c.Get(ctx, types.NamespacedName{Namespace: releaseNamespace, Name: "cobalt-ca"}, &ca)).To(Succeed())
		var lease coordinationv1.Lease
		Expect(s.c.Get(ctx, types.NamespacedName{Namespace: releaseNamespace, Name: leaseName}, &lease)).To(Succeed())
		for what, refs := range map[string][]metav1.OwnerReference{"CA Secret": ca.OwnerReferences, "Lease": lease.OwnerReferences} {
			Expect(refs).To(ContainElement(And(HaveField("Kind", "ServiceAccount"),
				HaveField("Name", operator.Spec.ServiceAccountName))), "owner of the operator's %s", what)
		}
	}, SpecTimeout(4*time.Minute))

	It("2: a StorageCluster on loop devices: the node daemon runs, a Store per device, the ext4 device is skipped untouched", func(ctx SpecContext) {
		_, err := s.helm.upgrade(ctx, chartValues(true, "2q"))
		Expect(err).NotTo(HaveOccurred())

		Eventually(func(g Gomega) { readyNodeDaemon(g, ctx) }).
			WithContext(ctx).WithTimeout(3 * time.Minute).WithPolling(time.Second).Should(Succeed())
		var st storagev1alpha1.Store
		Eventually(func(g Gomega) { st = readyStore(g, ctx, s.usable.path) }).
			WithContext(ctx).WithTimeout(2 * time.Minute).WithPolling(time.Second).Should(Succeed())
		storeUUID = st.Status.UUID
		Expect(st.Status.Capacity.Value()).To(BeNumerically(">", usableSize/2), "capacity of Store %s", st.Name)
		Expect(st.Status.Capacity.Value()).To(BeNumerically("<=", usableSize), "capacity of Store %s", st.Name)
		GinkgoWriter.Printf("Store %s on %s: uuid %s, capacity %s, used %s\n",
			st.Name, s.usable.path, st.Status.UUID, st.Status.Capacity, st.Status.Used)

		// The daemon's Go collector follows its one store's memory target (the default 1Gi, the
		// pod has no memory limit): GOGC 1000, the target as the soft memory limit.
		Eventually(func(g Gomega) {
			pod := readyNodeDaemon(g, ctx)
			m, err := daemonMetrics(ctx, pod.Name)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(m).To(HaveKeyWithValue("go_gc_gogc_percent", float64(1000)), "the daemon's GOGC")
			g.Expect(m).To(HaveKeyWithValue("go_gc_gomemlimit_bytes", float64(1<<30)), "the daemon's memory limit")
		}).WithContext(ctx).WithTimeout(time.Minute).WithPolling(2 * time.Second).Should(Succeed())

		var skipped storagev1alpha1.Store
		Eventually(func(g Gomega) {
			skipped = storeOn(g, ctx, s.ext4.path)
			g.Expect(skipped.Status.NotUsedReason).To(ContainSubstring("ext4"), "reason the ext4 device was not used")
		}).WithContext(ctx).WithTimeout(time.Minute).WithPolling(time.Second).Should(Succeed())
		Expect(meta.IsStatusConditionTrue(skipped.Status.Conditions, storagev1alpha1.ConditionReady)).To(BeFalse(),
			"the skipped device's Store must not be Ready")
		Expect(skipped.Status.UUID).To(BeEmpty(), "the skipped device got a store uuid")
		GinkgoWriter.Printf("Store %s on %s skipped: %q\n", skipped.Name, s.ext4.path, skipped.Status.NotUsedReason)
		expectExt4Untouched(ctx)

		Eventually(func(g Gomega) {
			var sc storagev1alpha1.StorageCluster
			g.Expect(s.c.Get(ctx, types.NamespacedName{Namespace: releaseNamespace, Name: clusterName}, &sc)).To(Succeed())
			g.Expect(meta.IsStatusConditionTrue(sc.Status.Conditions, storagev1alpha1.ConditionReady)).To(BeTrue(),
				"StorageCluster conditions %+v", sc.Status.Conditions)
			g.Expect(sc.Status.StoresUp).To(BeEquivalentTo(1))
		}).WithContext(ctx).WithTimeout(time.Minute).WithPolling(time.Second).Should(Succeed())
	}, SpecTimeout(6*time.Minute))

	It("3: a Volume turns Ready; data written through the CLI reads back with the same checksum", func(ctx SpecContext) {
		vol := &storagev1alpha1.Volume{
			ObjectMeta: metav1.ObjectMeta{Namespace: releaseNamespace, Name: volumeA},
			Spec:       storagev1alpha1.VolumeSpec{Size: resource.MustParse(volumeASize)},
		}
		Expect(s.c.Create(ctx, vol)).To(Succeed())
		expectVolumeReady(ctx, volumeA, s.usable.path)

		in := filepath.Join(s.work, "data-a.in")
		sum, err := randomFile(in, dataASize)
		Expect(err).NotTo(HaveOccurred())
		reported, err := s.cli.write(ctx, volumeA, in, 0, dataASize)
		Expect(err).NotTo(HaveOccurred())
		Expect(reported).To(Equal(sum), "checksum the CLI reports for what it wrote")
		dataA = written{offset: 0, size: dataASize, sum: sum}
		expectReadBack(ctx, []written{dataA})
	}, SpecTimeout(4*time.Minute))

	It("4: the node daemon pod is deleted during a write stream: it comes back, every acknowledged write reads back, the store mounts without repair", func(ctx SpecContext) {
		var old corev1.Pod
		Eventually(func(g Gomega) { old = readyNodeDaemon(g, ctx) }).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed())
		oldLog, err := followLog(ctx, old.Name)
		Expect(err).NotTo(HaveOccurred())

		w := startWriteStream(ctx, volumeA, streamBase)
		Eventually(w.acked).WithContext(ctx).WithTimeout(2*time.Minute).WithPolling(200*time.Millisecond).
			Should(BeNumerically(">=", 5), "acknowledged writes before the pod is deleted")
		beforeDelete := w.acked()
		Expect(s.c.Delete(ctx, &old)).To(Succeed())
		GinkgoWriter.Printf("deleted node daemon pod %s after %d acknowledged writes\n", old.Name, beforeDelete)

		var fresh corev1.Pod
		Eventually(func(g Gomega) {
			fresh = readyNodeDaemon(g, ctx)
			g.Expect(fresh.UID).NotTo(Equal(old.UID), "the old pod is still the only one")
			st := readyStore(g, ctx, s.usable.path)
			g.Expect(st.Status.LastHeartbeat.Time).To(BeTemporally(">", fresh.CreationTimestamp.Time), "heartbeat of the new daemon")
		}).WithContext(ctx).WithTimeout(3 * time.Minute).WithPolling(time.Second).Should(Succeed())
		afterBack := w.acked()
		Eventually(w.acked).WithContext(ctx).WithTimeout(2*time.Minute).WithPolling(200*time.Millisecond).
			Should(BeNumerically(">=", afterBack+5), "acknowledged writes once the new pod serves")
		streamed = w.stop()
		GinkgoWriter.Printf("write stream: %d acknowledged (%d before the delete), %d failed while the daemon was away\n",
			len(streamed), beforeDelete, w.failures())

		// The old daemon closed its store on SIGTERM; the new one mounted the same store as is.
		Eventually(oldLog.done).WithTimeout(90*time.Second).Should(BeClosed(), "log stream of the deleted pod")
		Expect(hasLogEntry(oldLog.String(), "store unmounted cleanly", map[string]string{"store": storeUUID})).To(BeTrue(),
			"the deleted pod's log has no clean unmount of store %s:\n%s", storeUUID, oldLog.String())
		newLog, err := s.kube.CoreV1().Pods(releaseNamespace).GetLogs(fresh.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(hasLogEntry(string(newLog), "store mounted", map[string]string{"store": storeUUID, "action": "Mount"})).To(BeTrue(),
			"the new pod did not mount store %s as is (action Mount):\n%s", storeUUID, newLog)
		Expect(string(newLog)).NotTo(ContainSubstring("repair"), "the new pod's log mentions a repair")
		Expect(fresh.Status.ContainerStatuses[0].RestartCount).To(BeZero(), "node daemon container restarts")

		expectReadBack(ctx, append([]written{dataA}, streamed...))
	}, SpecTimeout(10*time.Minute))

	It("5: a helm upgrade that changes an engine setting rolls the DaemonSet, and data survives", func(ctx SpecContext) {
		var before corev1.Pod
		Eventually(func(g Gomega) { before = readyNodeDaemon(g, ctx) }).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed())
		// The daemon reads its engine settings from the StorageCluster at start; the operator
		// rolls it through a hash of spec.devices and spec.engine in the pod template.
		const specHashAnnotation = "storage.cobalt.io/spec-sha256"
		dsKey := types.NamespacedName{Namespace: releaseNamespace, Name: clusterName + "-node-daemon"}
		var dsBefore appsv1.DaemonSet
		Expect(s.c.Get(ctx, dsKey, &dsBefore)).To(Succeed())
		hashBefore := dsBefore.Spec.Template.Annotations[specHashAnnotation]
		Expect(hashBefore).NotTo(BeEmpty(), "pod template annotation %s", specHashAnnotation)
		rel, err := s.helm.upgrade(ctx, chartValues(true, "lru"))
		Expect(err).NotTo(HaveOccurred())
		GinkgoWriter.Printf("release revision %d: engine.cacheType 2q -> lru\n", rel.Version)

		Eventually(func(g Gomega) {
			var ds appsv1.DaemonSet
			g.Expect(s.c.Get(ctx, dsKey, &ds)).To(Succeed())
			g.Expect(ds.Spec.Template.Annotations[specHashAnnotation]).NotTo(Equal(hashBefore), "DaemonSet spec hash")
			g.Expect(ds.Status.ObservedGeneration).To(Equal(ds.Generation), "DaemonSet rollout observed")
			g.Expect(ds.Status.UpdatedNumberScheduled).To(Equal(ds.Status.DesiredNumberScheduled), "updated pods")
			g.Expect(ds.Status.NumberReady).To(Equal(ds.Status.DesiredNumberScheduled), "ready pods")
			p := readyNodeDaemon(g, ctx)
			g.Expect(p.UID).NotTo(Equal(before.UID), "the node daemon pod was not replaced")
			g.Expect(p.Annotations[specHashAnnotation]).To(Equal(ds.Spec.Template.Annotations[specHashAnnotation]), "new pod's spec hash")
			st := readyStore(g, ctx, s.usable.path)
			g.Expect(st.Status.UUID).To(Equal(storeUUID), "the store changed identity")
			g.Expect(st.Status.LastHeartbeat.Time).To(BeTemporally(">", p.CreationTimestamp.Time), "heartbeat of the new daemon")
			g.Expect(st.Status.Cache).NotTo(BeNil(), "Store cache status")
			g.Expect(st.Status.Cache.Type).To(BeEquivalentTo("lru"), "cache type the engine reports")
		}).WithContext(ctx).WithTimeout(4 * time.Minute).WithPolling(time.Second).Should(Succeed())
		expectReadBack(ctx, append([]written{dataA}, streamed...))
	}, SpecTimeout(8*time.Minute))

	csiSteps()

	snapshotSteps()

	replicationSteps()

	It("18: deleting a Volume frees space; StorageCluster deletion waits for Volumes; helm uninstall leaves no Cobalt object, no FUSE mount, no loop device of the frontend; fsck of the store is clean", func(ctx SpecContext) {
		// A second Volume, which keeps the StorageCluster below.
		volumeB := "vol-b"
		Expect(s.c.Create(ctx, &storagev1alpha1.Volume{
			ObjectMeta: metav1.ObjectMeta{Namespace: releaseNamespace, Name: volumeB},
			Spec:       storagev1alpha1.VolumeSpec{Size: resource.MustParse("64Mi")},
		})).To(Succeed())
		expectVolumeReady(ctx, volumeB, s.usable.path)

		// Used bytes with vol-a's data, from a heartbeat sent after the last write.
		since := time.Now()
		var usedBefore int64
		Eventually(func(g Gomega) {
			st := readyStore(g, ctx, s.usable.path)
			g.Expect(st.Status.LastHeartbeat.Time).To(BeTemporally(">", since))
			usedBefore = st.Status.Used.Value()
		}).WithContext(ctx).WithTimeout(time.Minute).WithPolling(time.Second).Should(Succeed())
		Expect(s.c.Delete(ctx, &storagev1alpha1.Volume{ObjectMeta: metav1.ObjectMeta{Namespace: releaseNamespace, Name: volumeA}})).To(Succeed())
		expectGone(ctx, &storagev1alpha1.Volume{}, types.NamespacedName{Namespace: releaseNamespace, Name: volumeA}, time.Minute)
		var usedAfter int64
		Eventually(func(g Gomega) {
			usedAfter = readyStore(g, ctx, s.usable.path).Status.Used.Value()
			g.Expect(usedAfter).To(BeNumerically("<=", usedBefore-dataASize), "used bytes after deleting %s (before: %d)", volumeA, usedBefore)
		}).WithContext(ctx).WithTimeout(time.Minute).WithPolling(time.Second).Should(Succeed())
		GinkgoWriter.Printf("Store used bytes %d -> %d after deleting %s\n", usedBefore, usedAfter, volumeA)

		// The StorageCluster is refused while vol-b exists: it stays, says why, keeps serving.
		scKey := types.NamespacedName{Namespace: releaseNamespace, Name: clusterName}
		Expect(s.c.Delete(ctx, &storagev1alpha1.StorageCluster{ObjectMeta: metav1.ObjectMeta{Namespace: releaseNamespace, Name: clusterName}})).To(Succeed())
		Eventually(func(g Gomega) {
			var sc storagev1alpha1.StorageCluster
			g.Expect(s.c.Get(ctx, scKey, &sc)).To(Succeed())
			c := meta.FindStatusCondition(sc.Status.Conditions, storagev1alpha1.ConditionProgressing)
			g.Expect(c).NotTo(BeNil(), "Progressing condition")
			g.Expect(c.Reason).To(Equal(storagev1alpha1.ReasonDeletionBlocked))
			g.Expect(c.Message).To(ContainSubstring(volumeB))
		}).WithContext(ctx).WithTimeout(time.Minute).WithPolling(time.Second).Should(Succeed())
		Consistently(func(g Gomega) {
			var sc storagev1alpha1.StorageCluster
			g.Expect(s.c.Get(ctx, scKey, &sc)).To(Succeed(), "the StorageCluster went while %s exists", volumeB)
			g.Expect(sc.DeletionTimestamp).NotTo(BeNil())
			readyStore(g, ctx, s.usable.path)
		}).WithContext(ctx).WithTimeout(15 * time.Second).WithPolling(time.Second).Should(Succeed())

		Expect(s.c.Delete(ctx, &storagev1alpha1.Volume{ObjectMeta: metav1.ObjectMeta{Namespace: releaseNamespace, Name: volumeB}})).To(Succeed())
		expectGone(ctx, &storagev1alpha1.Volume{}, types.NamespacedName{Namespace: releaseNamespace, Name: volumeB}, time.Minute)
		expectGone(ctx, &storagev1alpha1.StorageCluster{}, scKey, 2*time.Minute)
		Eventually(func(g Gomega) {
			pods, err := podsWith(ctx, nodeDaemonLabels)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(pods).To(BeEmpty(), "node daemon pods after the StorageCluster went")
		}).WithContext(ctx).WithTimeout(2 * time.Minute).WithPolling(time.Second).Should(Succeed())

		Expect(s.helm.uninstall()).To(Succeed())
		// The CA Secret and the Lease go through the garbage collector (their owner, the
		// operator's ServiceAccount, went), so it may take a moment.
		Eventually(func(g Gomega) {
			g.Expect(leftovers(ctx)).To(BeEmpty(), "Cobalt objects left after helm uninstall")
		}).WithContext(ctx).WithTimeout(2 * time.Minute).WithPolling(2 * time.Second).Should(Succeed())
		crds, err := cobaltCRDs(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(crds).To(ConsistOf(keptCRDs), "helm uninstall keeps exactly Cobalt's CRDs (see keptCRDs) and nothing else")
		// The snapshot.storage.k8s.io CRDs came from the chart's crds/ too (the cluster had none):
		// kept as well, for the same reason and because other drivers' snapshots may use them.
		for _, name := range snapshotCRDs {
			Expect(s.c.Get(ctx, types.NamespacedName{Name: name}, &apiextensionsv1.CustomResourceDefinition{})).To(Succeed(), "CRD %s after uninstall", name)
		}
		GinkgoWriter.Printf("kept by design after uninstall: the CRDs %s and %s (Helm never deletes crds/; deleting them would delete every object of their kinds)\n",
			strings.Join(crds, ", "), strings.Join(snapshotCRDs, ", "))
		expectExt4Untouched(ctx)
		expectNoFrontendLeftovers(ctx)
		fsckStore(ctx)
	}, SpecTimeout(10*time.Minute))
})
