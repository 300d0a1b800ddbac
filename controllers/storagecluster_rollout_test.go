package controllers

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// envtest runs no DaemonSet controller and no kubelet: the specs play both, creating the node
// daemon pods and finishing their deletion.
var _ = Describe("Node daemon rollout", func() {
	var (
		ns      string
		cluster *v1alpha1.StorageCluster
		ds      *appsv1.DaemonSet
	)
	BeforeEach(func(ctx context.Context) {
		ns = createNamespace(ctx)
		cluster = newFileCluster(ns, "roll")
		Expect(k8sClient.Create(ctx, cluster)).To(Succeed())
		ds = &appsv1.DaemonSet{}
		Eventually(func() error {
			return k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "roll-node-daemon"}, ds)
		}).Should(Succeed())
		DeferCleanup(func(ctx context.Context) {
			deleteVolumesAndStores(ctx, ns)
		})
	})

	// dsSawPods plays the DaemonSet controller's status update after a pod of ds was created or
	// changed readiness (numberReady): it is what wakes the operator, which watches its
	// DaemonSet and not Pods. Without it the operator would look again only at its next
	// periodic refresh, after the specs' Eventually gave up.
	dsSawPods := func(ctx context.Context) {
		GinkgoHelper()
		Eventually(func(g Gomega) {
			var pods corev1.PodList
			g.Expect(k8sClient.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels(ds.Spec.Template.Labels))).To(Succeed())
			ready := int32(0)
			for _, p := range pods.Items {
				for _, c := range p.Status.Conditions {
					if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
						ready++
					}
				}
			}
			cur := &appsv1.DaemonSet{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(ds), cur)).To(Succeed())
			cur.Status.CurrentNumberScheduled, cur.Status.NumberReady = int32(len(pods.Items)), ready
			g.Expect(k8sClient.Status().Update(ctx, cur)).To(Succeed())
		}).Should(Succeed())
	}
	// setReady sets the Ready condition of node daemon pod p, as its kubelet would.
	setReady := func(ctx context.Context, p *corev1.Pod, ready bool) {
		GinkgoHelper()
		st := corev1.ConditionFalse
		if ready {
			st = corev1.ConditionTrue
		}
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}
		Expect(k8sClient.Status().Update(ctx, p)).To(Succeed())
		dsSawPods(ctx)
	}
	// daemonPod creates a Ready node daemon pod of ds on node from a template with hash. The pod
	// becomes the DaemonSet's (owner reference) only once it is Ready: an outdated pod of ds that
	// is not Ready is down, and the operator may restart it at any moment.
	daemonPod := func(ctx context.Context, node, hash string) *corev1.Pod {
		GinkgoHelper()
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "roll-node-daemon-", Labels: ds.Spec.Template.Labels,
				Annotations: map[string]string{templateHashAnnotation: hash}},
			Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "node-daemon", Image: "x"}}},
		}
		Expect(k8sClient.Create(ctx, p)).To(Succeed())
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		Expect(k8sClient.Status().Update(ctx, p)).To(Succeed())
		p.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(ds, appsv1.SchemeGroupVersion.WithKind("DaemonSet"))}
		Expect(k8sClient.Update(ctx, p)).To(Succeed())
		dsSawPods(ctx)
		return p
	}
	deleting := func(ctx context.Context, p *corev1.Pod) func(Gomega) bool {
		return func(g Gomega) bool {
			got := &corev1.Pod{}
			err := k8sClient.Get(ctx, client.ObjectKeyFromObject(p), got)
			if apierrors.IsNotFound(err) {
				return true
			}
			g.Expect(err).NotTo(HaveOccurred())
			return got.DeletionTimestamp != nil
		}
	}
	// finish plays the kubelet and the DaemonSet controller: the deleted pod goes, and a new one
	// from the current template takes its place.
	finish := func(ctx context.Context, p *corev1.Pod) *corev1.Pod {
		GinkgoHelper()
		Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, p, client.GracePeriodSeconds(0)))).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(p), &corev1.Pod{}))
		}).Should(BeTrue())
		return daemonPod(ctx, p.Spec.NodeName, ds.Spec.Template.Annotations[templateHashAnnotation])
	}
	progressing := func(ctx context.Context) func(Gomega) metav1.Condition {
		return func(g Gomega) metav1.Condition {
			c := &v1alpha1.StorageCluster{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(cluster), c)).To(Succeed())
			return condition(c.Status.Conditions, v1alpha1.ConditionProgressing)
		}
	}
	setCopyState := func(ctx context.Context, vol, store string, state v1alpha1.ReplicaState) {
		Eventually(func() error {
			v := &v1alpha1.Volume{}
			if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: vol}, v); err != nil {
				return err
			}
			for i := range v.Status.Replicas {
				if v.Status.Replicas[i].Store == store {
					v.Status.Replicas[i].State = state
				}
			}
			return k8sClient.Status().Update(ctx, v)
		}).Should(Succeed())
	}

	It("restarts outdated daemons one node at a time, never the one holding a replicated Volume's last in-sync copy", func(ctx context.Context) {
		Expect(ds.Spec.UpdateStrategy.Type).To(Equal(appsv1.OnDeleteDaemonSetStrategyType), "the operator restarts the daemons itself")
		Expect(ds.Spec.Template.Annotations).To(HaveKeyWithValue(templateHashAnnotation, HaveLen(16)))

		nodeA, nodeB := uniqueName("roll-a"), uniqueName("roll-b")
		sa := createReadyStore(ctx, cluster, uniqueName("sa"), nodeA, "100Gi", "0", nil)
		sb := createReadyStore(ctx, cluster, uniqueName("sb"), nodeB, "100Gi", "0", nil)
		vol := newVolume(ns, "mirror", "1Gi")
		vol.Spec.Replicas = 2
		vol.Spec.StoreName, vol.Spec.ReplicaStoreNames = sa.Name, []string{sb.Name}
		Expect(k8sClient.Create(ctx, vol)).To(Succeed())
		Eventually(func(g Gomega) int32 {
			v := &v1alpha1.Volume{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(vol), v)).To(Succeed())
			return v.Status.InSyncReplicas
		}).Should(Equal(int32(2)))
		By("the copy on node A falls behind (the node serving the volume says so)")
		setCopyState(ctx, vol.Name, sa.Name, v1alpha1.ReplicaCatchingUp)

		podA, podB := daemonPod(ctx, nodeA, "old"), daemonPod(ctx, nodeB, "old")
		By("node A first: its copy is behind, B holds one in sync")
		Eventually(deleting(ctx, podA)).Should(BeTrue())
		Consistently(deleting(ctx, podB), "2s").Should(BeFalse(), "one node at a time")
		Expect(progressing(ctx)(Default)).To(And(HaveField("Reason", v1alpha1.ReasonRollingOut),
			HaveField("Message", ContainSubstring("restarting the node daemon on node "+nodeA))))

		By("node A's new daemon is Ready: node B would take down the last in-sync copy, so the rollout waits")
		finish(ctx, podA)
		Eventually(progressing(ctx)).Should(And(HaveField("Status", metav1.ConditionTrue), HaveField("Reason", v1alpha1.ReasonRolloutBlocked),
			HaveField("Message", ContainSubstring("Volume "+ns+"/mirror would have no in-sync copy"))))
		Consistently(deleting(ctx, podB), "2s").Should(BeFalse())

		By("the copy on A is in sync again: B restarts, and the rollout ends")
		setCopyState(ctx, vol.Name, sa.Name, v1alpha1.ReplicaInSync)
		Eventually(deleting(ctx, podB)).Should(BeTrue())
		finish(ctx, podB)
		// (What remains is the DaemonSet's own status, which no DaemonSet controller updates here.)
		Eventually(progressing(ctx)).Should(And(Not(HaveField("Reason", v1alpha1.ReasonRolloutBlocked)),
			Not(HaveField("Message", ContainSubstring("older")))))
	})

	It("restarts an outdated daemon that is down at once, and waits while a current one is not Ready", func(ctx context.Context) {
		nodeA, nodeB := uniqueName("roll-a"), uniqueName("roll-b")
		podA := daemonPod(ctx, nodeA, ds.Spec.Template.Annotations[templateHashAnnotation])
		setReady(ctx, podA, false)
		podB := daemonPod(ctx, nodeB, "old")
		Eventually(progressing(ctx)).Should(HaveField("Message", ContainSubstring("restarting the node daemon on node "+nodeA)))
		Consistently(deleting(ctx, podB), "2s").Should(BeFalse(), "a current daemon is not Ready yet")

		// B goes down first: while A is not Ready nothing restarts, so neither write races the operator.
		setReady(ctx, podB, false)
		setReady(ctx, podA, true)
		Eventually(deleting(ctx, podB)).Should(BeTrue(), "down and outdated: restarting it takes nothing down")
	})
})
