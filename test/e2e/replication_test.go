//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
)

const (
	// replicatedClass is the chart-rendered StorageClass of the replication step: two copies, on
	// distinct Stores of the one node (allowSameNode: the e2e cluster has a single node).
	replicatedClass = "cobalt-replicated"
	replicaDevSize  = int64(1 << 30)
	// metadataDevSize is the separate metadata device of the first replication device.
	metadataDevSize = int64(256 << 20)
	// replacementDelay is how long the operator waits before it replaces a Lost copy.
	replacementDelay = "20s"
)

// replicationValues adds to chart values what the replication step needs: the two extra
// devices (the first with its metadata on a separate device), replication in the operator, and
// the replicated StorageClass.
func replicationValues(values map[string]any) map[string]any {
	sc := values["storageCluster"].(map[string]any)["spec"].(map[string]any)
	devs := sc["devices"].(map[string]any)
	devs["paths"] = append(devs["paths"].([]any), s.replA.path, s.replB.path)
	devs["metadataDevices"] = []any{map[string]any{"path": s.replA.path, "device": s.replAMeta.path}}
	op := values["operator"].(map[string]any)
	op["replication"] = map[string]any{"enabled": true, "replacementDelay": replacementDelay}
	values["storageClasses"] = []any{
		map[string]any{"name": "cobalt", "fsType": "ext4"},
		map[string]any{"name": "cobalt-xfs", "fsType": "xfs"},
		map[string]any{"name": replicatedClass, "fsType": "ext4", "replicas": 2, "allowSameNode": true},
	}
	return values
}

// copyStates renders a replicated Volume's copies for messages: "store@device=State".
func copyStates(vol *storagev1alpha1.Volume, devices map[string]string) string {
	parts := make([]string, 0, len(vol.Status.Replicas))
	for _, r := range vol.Status.Replicas {
		p := fmt.Sprintf("%s@%s=%s", r.Store, devices[r.Store], r.State)
		if r.Message != "" {
			p += " (" + r.Message + ")"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}

// storeDevices maps the cluster's Store names to their device paths.
func storeDevices(g Gomega, ctx context.Context) map[string]string {
	var stores storagev1alpha1.StoreList
	g.Expect(s.c.List(ctx, &stores)).To(Succeed())
	out := map[string]string{}
	for _, st := range stores.Items {
		out[st.Name] = st.Spec.DevicePath
	}
	return out
}

// showReplicationFailure prints what explains a failed replication step: the Volumes, the
// writer's logs and the node daemon's (its container before the last restart too).
func showReplicationFailure(ctx context.Context) {
	kubectl := func(args ...string) {
		out, err := run(ctx, "kubectl", append([]string{"--kubeconfig", s.env.kubeconfig}, args...)...)
		if err != nil {
			out += "\n" + err.Error()
		}
		GinkgoWriter.Printf("$ kubectl %s\n%s\n", strings.Join(args, " "), out)
	}
	kubectl("get", "volumes.storage.cobalt.io", "-A", "-o", "yaml")
	kubectl("get", "events", "-A", "--sort-by=.lastTimestamp")
	for _, pod := range []string{mirrorPod} {
		kubectl("logs", "-n", appNamespace, pod, "--tail=50")
		kubectl("logs", "-n", appNamespace, pod, "--previous", "--tail=50")
	}
	pods, err := podsWith(ctx, nodeDaemonLabels)
	if err != nil || len(pods) == 0 {
		GinkgoWriter.Printf("node daemon pods: %v (%d)\n", err, len(pods))
		return
	}
	kubectl("logs", "-n", releaseNamespace, pods[0].Name, "--previous", "--tail=300")
	kubectl("logs", "-n", releaseNamespace, pods[0].Name, "--tail=300")
}

// The replication step's StatefulSet: one Pod, its claim from the volumeClaimTemplate "data".
const (
	mirrorSet   = "mirror"
	mirrorPod   = mirrorSet + "-0"
	mirrorClaim = "data-" + mirrorPod
)

// mirrorStatefulSet is a StatefulSet of one journal writer on a claim of StorageClass
// replicatedClass.
func mirrorStatefulSet() *appsv1.StatefulSet {
	tmpl := workloadPod("", "", false, "journal", "/data")
	tmpl.Spec.Volumes = nil
	labels := map[string]string{"app": mirrorSet}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: appNamespace, Name: mirrorSet},
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: tmpl.Spec},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "data"},
				Spec:       claim("", replicatedClass, "256Mi", corev1.PersistentVolumeFilesystem).Spec,
			}},
		},
	}
}

// replicationSteps run a StatefulSet on a 2-copy claim (copies on two Stores of the one node; the
// first replication device's Store has its metadata on a separate metadata device),
// fail one copy's device under it (the device is detached while the node daemon is killed, so
// the restarted daemon no longer finds it), and check that every fsync'd write survives, the copy
// is replaced onto the third Store after the replacement delay and rebuilt, the StatefulSet's
// new Pod finds every record, and deleting the claim removes the Volume.
func replicationSteps() {
	It("17: replication: a StatefulSet writes to a 2-copy claim; one copy's device fails; no fsync'd write is lost, the copy is replaced and rebuilt on another Store", func(ctx SpecContext) {
		DeferCleanup(func(ctx SpecContext) {
			if CurrentSpecReport().Failed() {
				showReplicationFailure(ctx)
			}
		})
		values := replicationValues(chartValues(true, "lru"))
		_, err := s.helm.upgrade(ctx, values)
		Expect(err).NotTo(HaveOccurred())
		for _, dev := range []string{s.usable.path, s.replA.path, s.replB.path} {
			Eventually(func(g Gomega) { readyStore(g, ctx, dev) }).WithContext(ctx).WithTimeout(4*time.Minute).WithPolling(2*time.Second).Should(Succeed(), "Store on %s", dev)
		}
		// The first replication device's Store keeps its metadata on its metadata device.
		Eventually(func(g Gomega) {
			var stores storagev1alpha1.StoreList
			g.Expect(s.c.List(ctx, &stores)).To(Succeed())
			var found bool
			for _, st := range stores.Items {
				if st.Spec.DevicePath != s.replA.path {
					continue
				}
				found = true
				m := st.Status.Metadata
				g.Expect(m).NotTo(BeNil(), "Store %s status.metadata", st.Name)
				g.Expect(m.Placement).To(Equal(storagev1alpha1.MetadataOnSeparateDevice), "Store %s metadata %+v", st.Name, m)
				g.Expect(m.Location).To(And(HavePrefix("metadata device region ["), HaveSuffix(filepath.Base(s.replAMeta.path))), "Store %s metadata %+v", st.Name, m)
				GinkgoWriter.Printf("Store %s on %s: metadata %s, %s\n", st.Name, s.replA.path, m.Placement, m.Location)
			}
			g.Expect(found).To(BeTrue(), "a Store on %s", s.replA.path)
		}).WithContext(ctx).WithTimeout(time.Minute).WithPolling(2 * time.Second).Should(Succeed())
		// The snapshot steps deleted the apps namespace; it comes back once it is gone.
		Eventually(func() bool {
			return apierrors.IsNotFound(s.c.Get(ctx, types.NamespacedName{Name: appNamespace}, &corev1.Namespace{}))
		}).WithContext(ctx).WithTimeout(3*time.Minute).WithPolling(2*time.Second).Should(BeTrue(), "namespace %s still exists", appNamespace)
		Expect(s.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: appNamespace}})).To(Succeed())
		Expect(s.c.Create(ctx, mirrorStatefulSet())).To(Succeed())
		waitLogLine(ctx, mirrorPod, "ACK", 4*time.Minute)
		j, err := followJournal(ctx, mirrorPod)
		Expect(err).NotTo(HaveOccurred())
		Eventually(j.acked).WithContext(ctx).WithTimeout(time.Minute).Should(BeNumerically(">=", 100), "fsync'd records before the fault")

		var vol storagev1alpha1.Volume
		var devices map[string]string
		Eventually(func(g Gomega) {
			vol = volumeOfClaim(g, ctx, mirrorClaim)
			devices = storeDevices(g, ctx)
			g.Expect(vol.Spec.Replicas).To(BeEquivalentTo(2))
			g.Expect(vol.Status.InSyncReplicas).To(BeEquivalentTo(2), "copies: %s", copyStates(&vol, devices))
			g.Expect(vol.Status.Attachment).NotTo(BeNil(), "status.attachment")
			g.Expect(vol.Status.Attachment.Node).To(Equal(s.env.nodeName()))
		}).WithContext(ctx).WithTimeout(2 * time.Minute).WithPolling(2 * time.Second).Should(Succeed())
		showStorage(ctx)

		// The copy that fails is the second one; its device is one of the suite's (never the
		// first copy's, which the operator reports as the Volume's placement).
		failStore := vol.Status.Replicas[1].Store
		failDev := devices[failStore]
		var failed loopDevice
		for _, d := range []loopDevice{s.usable, s.replA, s.replB} {
			if d.path == failDev {
				failed = d
			}
		}
		Expect(failed.path).NotTo(BeEmpty(), "copy %s on device %s is not one of the suite's", failStore, failDev)
		keep := map[string]bool{vol.Status.Replicas[0].Store: true, failStore: true}
		GinkgoWriter.Printf("copies: %s; failing %s (%s) after %d fsync'd records\n", copyStates(&vol, devices), failStore, failDev, j.acked())

		// The loop device goes once nothing holds it open: detach (autoclear) while the daemon
		// still has it, then kill the daemon. Its restart does not find the device.
		_, err = run(ctx, "losetup", "--detach", failDev)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) {
			// The backing file stays; the suite's cleanup removes it (it detaches nothing then).
			GinkgoWriter.Printf("device %s of Store %s was detached by the replication step\n", failDev, failStore)
		})
		var writer corev1.Pod
		Expect(s.c.Get(ctx, types.NamespacedName{Namespace: appNamespace, Name: mirrorPod}, &writer)).To(Succeed())
		restarts := writer.Status.ContainerStatuses[0].RestartCount
		pid, err := nodeDaemonPID()
		Expect(err).NotTo(HaveOccurred())
		Expect(syscall.Kill(pid, syscall.SIGKILL)).To(Succeed())
		killed := time.Now()
		Eventually(j.done).WithContext(ctx).WithTimeout(2 * time.Minute).Should(BeClosed())
		acked := j.acked()

		// The writer restarts, verifies what it acknowledged and appends again, on the one copy
		// left, while the operator waits out the replacement delay and rebuilds elsewhere. (A
		// container that restarts before the daemon served the volume again meets the dead mount
		// and exits; a later one gets the new mount.)
		var verified int
		Eventually(func(g Gomega) {
			var p corev1.Pod
			g.Expect(s.c.Get(ctx, types.NamespacedName{Namespace: appNamespace, Name: mirrorPod}, &p)).To(Succeed())
			g.Expect(p.Status.ContainerStatuses).NotTo(BeEmpty())
			if p.UID == writer.UID { // else the StatefulSet replaced the Pod: its container is new
				g.Expect(p.Status.ContainerStatuses[0].RestartCount).To(BeNumerically(">", restarts), "the writer has not restarted since the fault")
			}
			log, err := containerLog(ctx, mirrorPod, false)
			g.Expect(err).NotTo(HaveOccurred())
			v := logLines(log, "VERIFIED")
			g.Expect(v).NotTo(BeEmpty(), "writer log:\n%s%s", log, podState(ctx, mirrorPod))
			verified, err = strconv.Atoi(strings.TrimPrefix(v[0], "upto="))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(logLines(log, "ACK")).NotTo(BeEmpty(), "the writer appends again")
		}).WithContext(ctx).WithTimeout(5 * time.Minute).WithPolling(2 * time.Second).Should(Succeed())
		Expect(verified).To(BeNumerically(">=", acked), "records intact vs fsync'd before the fault")
		GinkgoWriter.Printf("writer verified %d records (%d fsync'd before the fault) %s after it\n", verified, acked, time.Since(killed).Round(time.Second))

		var sawRebuild bool
		Eventually(func(g Gomega) {
			g.Expect(s.c.Get(ctx, types.NamespacedName{Namespace: releaseNamespace, Name: vol.Name}, &vol)).To(Succeed())
			devices = storeDevices(g, ctx)
			for _, r := range vol.Status.Replicas {
				if !keep[r.Store] && r.State == storagev1alpha1.ReplicaCatchingUp && !sawRebuild {
					sawRebuild = true
					out, _ := run(ctx, "kubectl", "--kubeconfig", s.env.kubeconfig, "get", "volumes.storage.cobalt.io", "-n", releaseNamespace, vol.Name, "-o", "wide")
					GinkgoWriter.Printf("during the rebuild:\n$ kubectl get volumes -o wide\n%s\ncopies: %s\n", out, copyStates(&vol, devices))
				}
			}
			g.Expect(vol.Status.InSyncReplicas).To(BeEquivalentTo(2), "copies: %s", copyStates(&vol, devices))
			g.Expect(vol.Status.Replicas).To(HaveLen(2), "copies: %s", copyStates(&vol, devices))
			stores := []string{vol.Spec.StoreName}
			stores = append(stores, vol.Spec.ReplicaStoreNames...)
			g.Expect(stores).NotTo(ContainElement(failStore), "the failed copy's Store is still in the Volume's spec")
			deg := meta.FindStatusCondition(vol.Status.Conditions, storagev1alpha1.ConditionDegraded)
			g.Expect(deg).NotTo(BeNil())
			g.Expect(deg.Status).To(Equal(metav1.ConditionFalse), "Degraded: %s %s", deg.Reason, deg.Message)
		}).WithContext(ctx).WithTimeout(6 * time.Minute).WithPolling(time.Second).Should(Succeed())
		GinkgoWriter.Printf("replaced and rebuilt %s after the fault: copies %s\n", time.Since(killed).Round(time.Second), copyStates(&vol, devices))
		showStorage(ctx)

		// The Volume's events tell the story: the operator saw the copy lost and replaced it, the
		// node daemon serving the volume rebuilt the new copy.
		Eventually(func(g Gomega) {
			var evs eventsv1.EventList
			g.Expect(s.c.List(ctx, &evs, client.InNamespace(releaseNamespace))).To(Succeed())
			by := map[string]string{}
			for _, e := range evs.Items {
				if e.Regarding.Kind == "Volume" && e.Regarding.Name == vol.Name {
					by[e.Reason] = e.ReportingController
				}
			}
			g.Expect(by).To(HaveKeyWithValue("ReplicaLost", "volume-controller"), "events of the Volume: %v", by)
			g.Expect(by).To(HaveKeyWithValue("ReplicaRebuilt", "cobalt-node-daemon"), "events of the Volume: %v", by)
		}).WithContext(ctx).WithTimeout(time.Minute).WithPolling(2 * time.Second).Should(Succeed())
		out, _ := run(ctx, "kubectl", "--kubeconfig", s.env.kubeconfig, "get", "events", "-n", releaseNamespace, "--field-selector", "involvedObject.name="+vol.Name, "--sort-by=.lastTimestamp")
		GinkgoWriter.Printf("$ kubectl get events --field-selector involvedObject.name=%s\n%s\n", vol.Name, out)

		// The writer's Pod is deleted; the StatefulSet's new Pod verifies everything again, now
		// with both copies in sync (the volume is unstaged and staged again).
		Expect(s.c.Delete(ctx, &writer)).To(Succeed())
		Eventually(func(g Gomega) {
			var p corev1.Pod
			g.Expect(s.c.Get(ctx, types.NamespacedName{Namespace: appNamespace, Name: mirrorPod}, &p)).To(Succeed())
			g.Expect(p.UID).NotTo(Equal(writer.UID), "pod %s not replaced yet", mirrorPod)
			g.Expect(p.DeletionTimestamp).To(BeNil())
		}).WithContext(ctx).WithTimeout(3 * time.Minute).WithPolling(time.Second).Should(Succeed())
		line := waitLogLine(ctx, mirrorPod, "VERIFIED", 4*time.Minute)
		again, err := strconv.Atoi(strings.TrimPrefix(logLines(line, "VERIFIED")[0], "upto="))
		Expect(err).NotTo(HaveOccurred())
		Expect(again).To(BeNumerically(">=", verified))
		GinkgoWriter.Printf("the StatefulSet's new Pod verified %d records\n", again)

		Expect(s.c.Delete(ctx, &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: appNamespace, Name: mirrorSet}})).To(Succeed())
		expectGone(ctx, &corev1.Pod{}, types.NamespacedName{Namespace: appNamespace, Name: mirrorPod}, 2*time.Minute)

		// The administrator takes the failed device out of the StorageCluster and deletes its
		// Store: the retired copy that was on it is forgotten (a Volume's deletion frees every
		// copy it can reach, and waits for a Store that still exists but cannot be reached).
		values = replicationValues(chartValues(true, "lru"))
		devs := values["storageCluster"].(map[string]any)["spec"].(map[string]any)["devices"].(map[string]any)
		var paths []any
		for _, p := range devs["paths"].([]any) {
			if p != failDev {
				paths = append(paths, p)
			}
		}
		devs["paths"] = paths
		if failDev == s.replA.path {
			delete(devs, "metadataDevices") // it names only paths that are listed
		}
		prev := nodeDaemonUID(ctx)
		_, err = s.helm.upgrade(ctx, values)
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			p := readyNodeDaemon(g, ctx)
			g.Expect(p.UID).NotTo(Equal(prev), "the node daemon runs the spec without %s", failDev)
		}).WithContext(ctx).WithTimeout(4 * time.Minute).WithPolling(2 * time.Second).Should(Succeed())
		Expect(s.c.Delete(ctx, &storagev1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: failStore}})).To(Succeed())
		expectGone(ctx, &storagev1alpha1.Store{}, types.NamespacedName{Name: failStore}, 2*time.Minute)

		Expect(s.c.Delete(ctx, &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: appNamespace, Name: mirrorClaim}})).To(Succeed())
		expectGone(ctx, &storagev1alpha1.Volume{}, types.NamespacedName{Namespace: releaseNamespace, Name: vol.Name}, 3*time.Minute)

		// Back to the suite's StorageCluster for the last step: the replication devices' Stores go.
		prev = nodeDaemonUID(ctx)
		_, err = s.helm.upgrade(ctx, chartValues(true, "lru"))
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			p := readyNodeDaemon(g, ctx)
			g.Expect(p.UID).NotTo(Equal(prev), "the node daemon runs the suite's devices again")
			readyStore(g, ctx, s.usable.path)
		}).WithContext(ctx).WithTimeout(4 * time.Minute).WithPolling(2 * time.Second).Should(Succeed())
		var stores storagev1alpha1.StoreList
		Expect(s.c.List(ctx, &stores)).To(Succeed())
		for _, st := range stores.Items {
			if st.Spec.DevicePath == s.replA.path || st.Spec.DevicePath == s.replB.path {
				Expect(client.IgnoreNotFound(s.c.Delete(ctx, &st))).To(Succeed())
				expectGone(ctx, &storagev1alpha1.Store{}, types.NamespacedName{Name: st.Name}, 2*time.Minute)
			}
		}
	}, SpecTimeout(25*time.Minute))
}
