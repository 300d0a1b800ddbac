//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
)

// The CSI steps run user workloads on PersistentVolumeClaims in their own namespace.
const (
	appNamespace = "e2e-apps"
	driverName   = "csi.cobalt.io"
	topologyKey  = "topology.cobalt.io/node"
)

// workloadPod is a Pod running the e2e workload (test/e2e/workload) with args, on claim mounted
// at /data (or, for a Block claim, as the device /dev/xvda).
func workloadPod(name, claim string, block bool, args ...string) *corev1.Pod {
	c := corev1.Container{
		Name: "workload", Image: "cobalt/e2e-workload:" + s.env.imageTag, ImagePullPolicy: corev1.PullNever, Args: args,
	}
	if block {
		c.VolumeDevices = []corev1.VolumeDevice{{Name: "data", DevicePath: "/dev/xvda"}}
	} else {
		c.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: appNamespace, Name: name, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{
			Containers:                    []corev1.Container{c},
			TerminationGracePeriodSeconds: ptr.To[int64](5),
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim},
			}}},
		},
	}
}

func claim(name, class, size string, mode corev1.PersistentVolumeMode) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: appNamespace, Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: ptr.To(class),
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			VolumeMode:       ptr.To(mode),
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
		},
	}
}

// containerLog returns the log of pod's current container (previous: the one before it).
func containerLog(ctx context.Context, pod string, previous bool) (string, error) {
	b, err := s.kube.CoreV1().Pods(appNamespace).GetLogs(pod, &corev1.PodLogOptions{Previous: previous}).DoRaw(ctx)
	return string(b), err
}

// logLines returns the lines of log that start with word (a word alone on its line too), without it.
func logLines(log, word string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if rest, ok := strings.CutPrefix(l, word+" "); ok {
			out = append(out, rest)
		} else if l == word {
			out = append(out, "")
		}
	}
	return out
}

// waitLogLine waits until pod's current container has printed a line starting with word and
// returns the whole log.
func waitLogLine(ctx context.Context, pod, word string, timeout time.Duration) string {
	GinkgoHelper()
	var log string
	Eventually(func(g Gomega) {
		var err error
		log, err = containerLog(ctx, pod, false)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(logLines(log, word)).NotTo(BeEmpty(), "pod %s has not printed %s yet; its log:\n%s%s", pod, word, log, podState(ctx, pod))
	}).WithContext(ctx).WithTimeout(timeout).WithPolling(time.Second).Should(Succeed())
	return log
}

func podState(ctx context.Context, name string) string {
	var p corev1.Pod
	if err := s.c.Get(ctx, types.NamespacedName{Namespace: appNamespace, Name: name}, &p); err != nil {
		return "\n(pod: " + err.Error() + ")"
	}
	return "\n(pod: " + podSummary(&p) + ")"
}

// claimEvents returns the messages of the events about PVC name (reason: message).
func claimEvents(ctx context.Context, name string) []string {
	evs, err := s.kube.CoreV1().Events(appNamespace).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, e := range evs.Items {
		out = append(out, e.Reason+": "+e.Message)
	}
	return out
}

// volumeOfClaim returns the Volume that backs PVC name, found through its PV's volumeHandle, and
// checks the links both ways: PV → Volume (handle, driver, topology) and Volume → PVC and PV.
func volumeOfClaim(g Gomega, ctx context.Context, name string) storagev1alpha1.Volume {
	var pvc corev1.PersistentVolumeClaim
	g.Expect(s.c.Get(ctx, types.NamespacedName{Namespace: appNamespace, Name: name}, &pvc)).To(Succeed())
	g.Expect(pvc.Status.Phase).To(Equal(corev1.ClaimBound), "PVC %s phase; events %v", name, claimEvents(ctx, name))
	var pv corev1.PersistentVolume
	g.Expect(s.c.Get(ctx, types.NamespacedName{Name: pvc.Spec.VolumeName}, &pv)).To(Succeed())
	g.Expect(pv.Spec.CSI).NotTo(BeNil(), "PV %s is not a CSI volume", pv.Name)
	g.Expect(pv.Spec.CSI.Driver).To(Equal(driverName))
	g.Expect(pv.Spec.NodeAffinity).NotTo(BeNil(), "PV %s has no node affinity", pv.Name)
	terms := pv.Spec.NodeAffinity.Required.NodeSelectorTerms
	g.Expect(terms).To(HaveLen(1))
	g.Expect(terms[0].MatchExpressions).To(ContainElement(And(HaveField("Key", topologyKey), HaveField("Values", ConsistOf(s.env.nodeName())))))
	var vol storagev1alpha1.Volume
	g.Expect(s.c.Get(ctx, types.NamespacedName{Namespace: releaseNamespace, Name: pv.Spec.CSI.VolumeHandle}, &vol)).To(Succeed(),
		"the Volume named by PV %s's volumeHandle", pv.Name)
	g.Expect(vol.Annotations).To(HaveKeyWithValue(storagev1alpha1.KeyPVCName, name))
	g.Expect(vol.Annotations).To(HaveKeyWithValue(storagev1alpha1.KeyPVCNamespace, appNamespace))
	g.Expect(vol.Annotations).To(HaveKeyWithValue(storagev1alpha1.KeyPVName, pv.Name))
	g.Expect(vol.Status.Placement).NotTo(BeNil())
	g.Expect(vol.Status.Placement.Node).To(Equal(s.env.nodeName()))
	return vol
}

// showStorage prints what a user would look at: StorageClasses, claims, volumes, Volumes, and
// `cobalt status`.
func showStorage(ctx context.Context) {
	out, err := run(ctx, "kubectl", "--kubeconfig", s.env.kubeconfig, "get", "sc,pvc,pv,volumes.storage.cobalt.io", "-A")
	if err != nil {
		out = err.Error()
	}
	GinkgoWriter.Printf("$ kubectl get sc,pvc,pv,volumes -A\n%s\n", out)
	status, _, err := s.cli.run(ctx, "status", "-A")
	if err != nil {
		status = err.Error()
	}
	GinkgoWriter.Printf("$ cobalt status -A\n%s\n", status)
}

// nodeDaemonPID finds the node daemon's process on this machine (the suite runs on the node).
func nodeDaemonPID() (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	var found []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil || filepath.Base(exe) != "node-daemon" {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), "--csi-endpoint") {
			found = append(found, pid)
		}
	}
	if len(found) != 1 {
		return 0, fmt.Errorf("want exactly one node daemon process serving CSI, found %v", found)
	}
	return found[0], nil
}

// journalLog follows one container's log of the journal pod and remembers the highest ACK.
type journalLog struct {
	mu     sync.Mutex
	maxAck int
	errs   []string
	done   chan struct{}
}

var ackLine = regexp.MustCompile(`^ACK (\d+)$`)

func followJournal(ctx context.Context, pod string) (*journalLog, error) {
	stream, err := s.kube.CoreV1().Pods(appNamespace).GetLogs(pod, &corev1.PodLogOptions{Follow: true}).Stream(ctx)
	if err != nil {
		return nil, err
	}
	j := &journalLog{done: make(chan struct{})}
	go func() {
		defer close(j.done)
		defer stream.Close()
		sc := bufio.NewScanner(stream)
		for sc.Scan() {
			j.mu.Lock()
			if m := ackLine.FindStringSubmatch(sc.Text()); m != nil {
				n, _ := strconv.Atoi(m[1])
				j.maxAck = max(j.maxAck, n)
			} else if strings.HasPrefix(sc.Text(), "ERROR") {
				j.errs = append(j.errs, sc.Text())
			}
			j.mu.Unlock()
		}
		_ = sc.Err() // io.EOF when the container ends
	}()
	return j, nil
}

func (j *journalLog) acked() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.maxAck
}

// mountsUnder returns the lines of /proc/mounts whose mount point is under dir or whose file
// system type is FUSE with dir in its source.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/mounts")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 && strings.HasPrefix(fields[1], dir) {
			out = append(out, sc.Text())
		}
	}
	return out, sc.Err()
}

// csiSteps are the steps that use Cobalt through its CSI driver, as a platform team's users do:
// StorageClasses, PVCs, a StatefulSet, a Block claim, online expansion, a node daemon killed
// under a writer, bad requests, and deletion. They run after the operator and a StorageCluster
// are up (steps 1-5) and before the uninstall.
func csiSteps() {
	var (
		stsFiles map[string][]string // per StatefulSet pod: "name sum" lines it wrote
	)

	It("6: the CSI driver: CSIDriver and StorageClasses installed, the node plugin registered with kubelet, topology on the node", func(ctx SpecContext) {
		var drv storagev1.CSIDriver
		Expect(s.c.Get(ctx, types.NamespacedName{Name: driverName}, &drv)).To(Succeed())
		Expect(drv.Spec.AttachRequired).To(HaveValue(BeTrue()), "every volume is attached (csi-attacher, ControllerPublish) before it is staged")
		for _, name := range []string{"cobalt", "cobalt-xfs"} {
			var sc storagev1.StorageClass
			Expect(s.c.Get(ctx, types.NamespacedName{Name: name}, &sc)).To(Succeed(), "StorageClass %s", name)
			Expect(sc.Provisioner).To(Equal(driverName))
			Expect(sc.VolumeBindingMode).To(HaveValue(Equal(storagev1.VolumeBindingWaitForFirstConsumer)))
			Expect(sc.AllowVolumeExpansion).To(HaveValue(BeTrue()))
		}
		// The node plugin registers itself with kubelet (no node-driver-registrar): kubelet then
		// lists the driver in the node's CSINode with its topology key and labels the node.
		Eventually(func(g Gomega) {
			var cn storagev1.CSINode
			g.Expect(s.c.Get(ctx, types.NamespacedName{Name: s.env.nodeName()}, &cn)).To(Succeed())
			g.Expect(cn.Spec.Drivers).To(ContainElement(And(HaveField("Name", driverName),
				HaveField("NodeID", s.env.nodeName()), HaveField("TopologyKeys", ContainElement(topologyKey)))))
			var node corev1.Node
			g.Expect(s.c.Get(ctx, types.NamespacedName{Name: s.env.nodeName()}, &node)).To(Succeed())
			g.Expect(node.Labels).To(HaveKeyWithValue(topologyKey, s.env.nodeName()))
		}).WithContext(ctx).WithTimeout(2 * time.Minute).WithPolling(time.Second).Should(Succeed())
		Expect(s.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: appNamespace}})).To(Succeed())
		GinkgoWriter.Printf("CSINode %s lists %s with topology key %s\n", s.env.nodeName(), driverName, topologyKey)
	}, SpecTimeout(3*time.Minute))

	It("7: a StatefulSet of 2 replicas with volumeClaimTemplates on StorageClass cobalt: claims bound, Volumes on the node, files written with fsync", func(ctx SpecContext) {
		tmpl := workloadPod("", "", false, "files", "/data", "3", strconv.Itoa(1<<20))
		tmpl.Spec.Volumes = nil
		sts := &appsv1.StatefulSet{
			ObjectMeta: metav1.ObjectMeta{Namespace: appNamespace, Name: "writer"},
			Spec: appsv1.StatefulSetSpec{
				Replicas:            ptr.To[int32](2),
				PodManagementPolicy: appsv1.ParallelPodManagement,
				Selector:            &metav1.LabelSelector{MatchLabels: map[string]string{"app": "writer"}},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "writer"}},
					Spec:       tmpl.Spec,
				},
				VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
					ObjectMeta: metav1.ObjectMeta{Name: "data"},
					Spec:       claim("", "cobalt", "128Mi", corev1.PersistentVolumeFilesystem).Spec,
				}},
			},
		}
		Expect(s.c.Create(ctx, sts)).To(Succeed())
		stsFiles = map[string][]string{}
		for _, pod := range []string{"writer-0", "writer-1"} {
			log := waitLogLine(ctx, pod, "READY", 4*time.Minute)
			Expect(logLines(log, "VERIFIED")).To(Equal([]string{"0"}), "a new volume has no manifest")
			stsFiles[pod] = logLines(log, "WROTE")
			Expect(stsFiles[pod]).To(HaveLen(3))
			Eventually(func(g Gomega) {
				vol := volumeOfClaim(g, ctx, "data-"+pod)
				g.Expect(vol.Spec.VolumeMode).To(Equal(storagev1alpha1.VolumeModeFilesystem))
			}).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed())
			GinkgoWriter.Printf("%s wrote %v\n", pod, stsFiles[pod])
		}
		showStorage(ctx)
	}, SpecTimeout(6*time.Minute))

	It("8: the StatefulSet's Pods are deleted and come back with the same data", func(ctx SpecContext) {
		old := map[string]types.UID{}
		for _, name := range []string{"writer-0", "writer-1"} {
			var p corev1.Pod
			Expect(s.c.Get(ctx, types.NamespacedName{Namespace: appNamespace, Name: name}, &p)).To(Succeed())
			old[name] = p.UID
			Expect(s.c.Delete(ctx, &p)).To(Succeed())
		}
		for _, name := range []string{"writer-0", "writer-1"} {
			Eventually(func(g Gomega) {
				var p corev1.Pod
				g.Expect(s.c.Get(ctx, types.NamespacedName{Namespace: appNamespace, Name: name}, &p)).To(Succeed())
				g.Expect(p.UID).NotTo(Equal(old[name]), "pod %s not replaced yet", name)
			}).WithContext(ctx).WithTimeout(3 * time.Minute).WithPolling(time.Second).Should(Succeed())
			// The new pod verifies every file of the manifest (sha256) before it writes more.
			log := waitLogLine(ctx, name, "READY", 4*time.Minute)
			Expect(logLines(log, "VERIFIED")).To(Equal([]string{"3"}), "files %s verified after the restart", name)
			GinkgoWriter.Printf("%s came back and verified its 3 files: %v\n", name, stsFiles[name])
		}
	}, SpecTimeout(8*time.Minute))

	It("9: a claim is expanded online (xfs): the Volume grows and df in the Pod shows it", func(ctx SpecContext) {
		// ext4 grows online only with CAP_SYS_RESOURCE, which root on this CI machine does not
		// hold (resize2fs: "Permission denied to resize filesystem"); xfs_growfs needs
		// CAP_SYS_ADMIN only, so the online expansion runs on StorageClass cobalt-xfs here. The
		// claim asks for 128Mi: mkfs.xfs makes nothing under 300 MB, so the driver provisions
		// 300Mi and the claim says so.
		Expect(s.c.Create(ctx, claim("grow", "cobalt-xfs", "128Mi", corev1.PersistentVolumeFilesystem))).To(Succeed())
		Expect(s.c.Create(ctx, workloadPod("grow", "grow", false, "files", "/data", "1", "4096"))).To(Succeed())
		log := waitLogLine(ctx, "grow", "STATFS", 4*time.Minute)
		before := statfsTotal(logLines(log, "STATFS"))
		Expect(before).To(BeNumerically("<", 300<<20))
		Eventually(func(g Gomega) {
			var got corev1.PersistentVolumeClaim
			g.Expect(s.c.Get(ctx, types.NamespacedName{Namespace: appNamespace, Name: "grow"}, &got)).To(Succeed())
			g.Expect(got.Status.Capacity.Storage().String()).To(Equal("300Mi"), "capacity of an xfs claim of 128Mi")
		}).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed())
		var pvc corev1.PersistentVolumeClaim
		Expect(s.c.Get(ctx, types.NamespacedName{Namespace: appNamespace, Name: "grow"}, &pvc)).To(Succeed())
		pvc.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("512Mi")
		Expect(s.c.Update(ctx, &pvc)).To(Succeed())
		start := time.Now()
		var after int64
		Eventually(func(g Gomega) {
			log, err := containerLog(ctx, "grow", false)
			g.Expect(err).NotTo(HaveOccurred())
			lines := logLines(log, "STATFS")
			after = statfsTotal(lines[len(lines)-1:])
			g.Expect(after).To(BeNumerically(">", 384<<20), "file system size in the Pod; claim events %v", claimEvents(ctx, "grow"))
			var got corev1.PersistentVolumeClaim
			g.Expect(s.c.Get(ctx, types.NamespacedName{Namespace: appNamespace, Name: "grow"}, &got)).To(Succeed())
			g.Expect(got.Status.Capacity.Storage().Cmp(resource.MustParse("512Mi"))).To(BeNumerically(">=", 0), "claim capacity")
			vol := volumeOfClaim(g, ctx, "grow")
			g.Expect(vol.Status.AllocatedSize.Cmp(resource.MustParse("512Mi"))).To(BeNumerically(">=", 0), "Volume allocated size")
		}).WithContext(ctx).WithTimeout(4 * time.Minute).WithPolling(2 * time.Second).Should(Succeed())
		GinkgoWriter.Printf("online expansion 300Mi (asked 128Mi) -> 512Mi: df in the Pod %d -> %d bytes, in %s, the Pod never restarted\n",
			before, after, time.Since(start).Round(time.Second))
		var p corev1.Pod
		Expect(s.c.Get(ctx, types.NamespacedName{Namespace: appNamespace, Name: "grow"}, &p)).To(Succeed())
		Expect(p.Status.ContainerStatuses[0].RestartCount).To(BeZero())
	}, SpecTimeout(8*time.Minute))

	It("10: a Block claim is written raw with O_DIRECT and read back", func(ctx SpecContext) {
		Expect(s.c.Create(ctx, claim("raw", "cobalt", "64Mi", corev1.PersistentVolumeBlock))).To(Succeed())
		Expect(s.c.Create(ctx, workloadPod("raw", "raw", true, "block", "/dev/xvda", strconv.Itoa(4<<20)))).To(Succeed())
		log := waitLogLine(ctx, "raw", "BLOCK", 4*time.Minute)
		Expect(logLines(log, "BLOCK")[0]).To(HavePrefix("ok size=%d ", 64<<20))
		Eventually(func(g Gomega) {
			g.Expect(volumeOfClaim(g, ctx, "raw").Spec.VolumeMode).To(Equal(storagev1alpha1.VolumeModeBlock))
		}).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed())
		GinkgoWriter.Printf("block claim: %s\n", logLines(log, "BLOCK")[0])
	}, SpecTimeout(5*time.Minute))

	It("11: the node daemon is killed with SIGKILL while a Pod writes with fsync: every fsync'd write reads back", func(ctx SpecContext) {
		Expect(s.c.Create(ctx, claim("journal", "cobalt", "128Mi", corev1.PersistentVolumeFilesystem))).To(Succeed())
		Expect(s.c.Create(ctx, workloadPod("journal", "journal", false, "journal", "/data"))).To(Succeed())
		waitLogLine(ctx, "journal", "ACK", 4*time.Minute)
		j, err := followJournal(ctx, "journal")
		Expect(err).NotTo(HaveOccurred())
		Eventually(j.acked).WithContext(ctx).WithTimeout(time.Minute).Should(BeNumerically(">=", 50), "fsync'd records before the kill")
		var daemon corev1.Pod
		Eventually(func(g Gomega) { daemon = readyNodeDaemon(g, ctx) }).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed())
		restarts := daemon.Status.ContainerStatuses[0].RestartCount
		pid, err := nodeDaemonPID()
		Expect(err).NotTo(HaveOccurred())
		Expect(syscall.Kill(pid, syscall.SIGKILL)).To(Succeed())
		killed := time.Now()
		GinkgoWriter.Printf("killed the node daemon (pid %d) with SIGKILL after %d fsync'd records\n", pid, j.acked())
		// The writer's next write or fsync fails (EIO): its container exits and is restarted.
		Eventually(j.done).WithContext(ctx).WithTimeout(2 * time.Minute).Should(BeClosed())
		acked := j.acked()
		Eventually(func(g Gomega) {
			p := readyNodeDaemon(g, ctx)
			g.Expect(p.UID).To(Equal(daemon.UID), "the same pod: its container restarts")
			g.Expect(p.Status.ContainerStatuses[0].RestartCount).To(BeNumerically(">", restarts))
		}).WithContext(ctx).WithTimeout(3 * time.Minute).WithPolling(time.Second).Should(Succeed())
		back := time.Now()
		// A restarted writer container verifies the journal: every record it acknowledged is
		// there, intact, and it appends again.
		var verified int
		Eventually(func(g Gomega) {
			log, err := containerLog(ctx, "journal", false)
			g.Expect(err).NotTo(HaveOccurred())
			v := logLines(log, "VERIFIED")
			g.Expect(v).NotTo(BeEmpty(), "journal container log:\n%s%s", log, podState(ctx, "journal"))
			verified, err = strconv.Atoi(strings.TrimPrefix(v[0], "upto="))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(logLines(log, "ACK")).NotTo(BeEmpty(), "the writer appends again")
		}).WithContext(ctx).WithTimeout(5 * time.Minute).WithPolling(2 * time.Second).Should(Succeed())
		Expect(verified).To(BeNumerically(">=", acked), "records intact after the restart vs fsync'd before the kill")
		var p corev1.Pod
		Expect(s.c.Get(ctx, types.NamespacedName{Namespace: appNamespace, Name: "journal"}, &p)).To(Succeed())
		GinkgoWriter.Printf("node daemon back in %s; writer restarted %d times, verified %d records intact (%d fsync'd before the kill), in %s after the kill; the writer saw: %v\n",
			back.Sub(killed).Round(time.Second), p.Status.ContainerStatuses[0].RestartCount, verified, acked, time.Since(killed).Round(time.Second), j.errs)
	}, SpecTimeout(10*time.Minute))

	It("12: bad requests get clear answers: a claim larger than any Store, an unknown StorageClass parameter", func(ctx SpecContext) {
		Expect(s.c.Create(ctx, claim("huge", "cobalt", "100Gi", corev1.PersistentVolumeFilesystem))).To(Succeed())
		Expect(s.c.Create(ctx, workloadPod("huge", "huge", false, "files", "/data", "1", "4096"))).To(Succeed())
		bad := &storagev1.StorageClass{
			ObjectMeta:        metav1.ObjectMeta{Name: "cobalt-e2e-bad"},
			Provisioner:       driverName,
			Parameters:        map[string]string{"encrypted": "true"},
			VolumeBindingMode: ptr.To(storagev1.VolumeBindingImmediate),
		}
		Expect(s.c.Create(ctx, bad)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) { Expect(client.IgnoreNotFound(s.c.Delete(ctx, bad))).To(Succeed()) })
		Expect(s.c.Create(ctx, claim("unknown-param", bad.Name, "64Mi", corev1.PersistentVolumeFilesystem))).To(Succeed())
		want := map[string]string{
			"huge":          "no Store can hold",
			"unknown-param": `unsupported StorageClass parameter "encrypted"`,
		}
		for name, msg := range want {
			var seen string
			Eventually(func(g Gomega) {
				evs := claimEvents(ctx, name)
				for _, e := range evs {
					if strings.HasPrefix(e, "ProvisioningFailed: ") && strings.Contains(e, msg) {
						seen = e
					}
				}
				g.Expect(seen).NotTo(BeEmpty(), "events of PVC %s: %v", name, evs)
			}).WithContext(ctx).WithTimeout(3 * time.Minute).WithPolling(2 * time.Second).Should(Succeed())
			GinkgoWriter.Printf("PVC %s: %s\n", name, seen)
		}
		for _, name := range []string{"huge"} {
			Expect(s.c.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: appNamespace, Name: name}})).To(Succeed())
		}
		for _, name := range []string{"huge", "unknown-param"} {
			Expect(s.c.Delete(ctx, &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: appNamespace, Name: name}})).To(Succeed())
		}
		// Nothing is left behind for them. (While a claim exists the provisioner retries, and each
		// retry's Volume lives until the operator found no Store for it: look once they are gone.)
		Eventually(func(g Gomega) {
			var vols storagev1alpha1.VolumeList
			g.Expect(s.c.List(ctx, &vols, client.InNamespace(releaseNamespace))).To(Succeed())
			for _, v := range vols.Items {
				g.Expect(v.Annotations[storagev1alpha1.KeyPVCName]).NotTo(BeElementOf("huge", "unknown-param"), "Volume %s", v.Name)
			}
		}).WithContext(ctx).WithTimeout(2 * time.Minute).WithPolling(2 * time.Second).Should(Succeed())
	}, SpecTimeout(8*time.Minute))

	It("13: deleting the workloads and their claims deletes the Volumes and frees their space; nothing stays staged", func(ctx SpecContext) {
		showStorage(ctx)
		var before storagev1alpha1.Store
		Eventually(func(g Gomega) { before = readyStore(g, ctx, s.usable.path) }).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed())
		Expect(s.c.Delete(ctx, &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: appNamespace, Name: "writer"}})).To(Succeed())
		for _, name := range []string{"writer-0", "writer-1", "grow", "raw", "journal"} {
			Expect(client.IgnoreNotFound(s.c.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: appNamespace, Name: name}}))).To(Succeed())
		}
		for _, name := range []string{"data-writer-0", "data-writer-1", "grow", "raw", "journal"} {
			Expect(s.c.Delete(ctx, &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: appNamespace, Name: name}})).To(Succeed())
		}
		Eventually(func(g Gomega) {
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
			g.Expect(pvs.Items).To(BeEmpty(), "PersistentVolumes left")
		}).WithContext(ctx).WithTimeout(4 * time.Minute).WithPolling(2 * time.Second).Should(Succeed())
		var after int64
		Eventually(func(g Gomega) {
			after = readyStore(g, ctx, s.usable.path).Status.Used.Value()
			g.Expect(after).To(BeNumerically("<", before.Status.Used.Value()), "Store used bytes after the claims went")
		}).WithContext(ctx).WithTimeout(time.Minute).WithPolling(time.Second).Should(Succeed())
		// Kubelet unpublishes and unstages as the Pods go: no CSI mount of a Cobalt volume stays.
		Eventually(func(g Gomega) {
			mounts, err := mountsUnder(s.env.kubeletDir)
			g.Expect(err).NotTo(HaveOccurred())
			var staged []string
			for _, m := range mounts {
				if strings.Contains(m, "/kubernetes.io~csi/") || strings.Contains(m, "/plugins/kubernetes.io/csi/") {
					staged = append(staged, m)
				}
			}
			g.Expect(staged).To(BeEmpty(), "staged or published CSI mounts left under the kubelet directory")
		}).WithContext(ctx).WithTimeout(2 * time.Minute).WithPolling(2 * time.Second).Should(Succeed())
		Expect(s.c.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: appNamespace}})).To(Succeed())
		GinkgoWriter.Printf("claims deleted: Volumes and PVs gone, Store used %s -> %d bytes, no staged or published mount left\n", before.Status.Used, after)
	}, SpecTimeout(6*time.Minute))
}

// statfsTotal parses the total of the last "total=N avail=M" line.
func statfsTotal(lines []string) int64 {
	if len(lines) == 0 {
		return 0
	}
	var total, avail int64
	if _, err := fmt.Sscanf(lines[len(lines)-1], "total=%d avail=%d", &total, &avail); err != nil {
		return 0
	}
	return total
}

// expectNoFrontendLeftovers checks, once the node daemon is gone, that no FUSE mount and no loop
// device of the CSI frontend is left on the machine.
func expectNoFrontendLeftovers(ctx context.Context) {
	GinkgoHelper()
	state := filepath.Join(s.env.dir, "state")
	Eventually(func(g Gomega) {
		mounts, err := mountsUnder(state)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(mounts).To(BeEmpty(), "mounts left under the node daemon's state directory")
		loops, err := run(ctx, "losetup", "-a")
		g.Expect(err).NotTo(HaveOccurred())
		for _, l := range strings.Split(loops, "\n") {
			g.Expect(l).NotTo(ContainSubstring(state), "loop device of the CSI frontend left")
		}
	}).WithContext(ctx).WithTimeout(time.Minute).WithPolling(2 * time.Second).Should(Succeed())
}

// fsckStore runs the engine's deep fsck on the store device once no daemon has it mounted.
func fsckStore(ctx context.Context) {
	GinkgoHelper()
	out, err := run(ctx, filepath.Join(filepath.Dir(s.env.cli), "node-daemon"), "fsck", s.usable.path,
		"--state-dir", filepath.Join(s.env.dir, "state"))
	Expect(err).NotTo(HaveOccurred(), "fsck of the store on %s:\n%s", s.usable.path, out)
	Expect(out).To(ContainSubstring("fsck: clean"))
	GinkgoWriter.Printf("$ node-daemon fsck %s\n%s", s.usable.path, out)
}
