package controllers

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// A Node stands in for a Store here: it has a status subresource and no reconciler of this
// suite writes it, so the only writers are the ones the spec plays.
var _ = Describe("patchStatus", func() {
	It("writes its status change although a phase patched the metadata and another writer changed status since", func(ctx context.Context) {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: uniqueName("patch-status")}}
		Expect(k8sClient.Create(ctx, node)).To(Succeed())
		before := node.DeepCopy()

		By("a phase patching the metadata: obj gets a newer resourceVersion than before")
		cp := node.DeepCopy()
		cp.Labels = map[string]string{"phase": "done"}
		Expect(k8sClient.Patch(ctx, cp, client.MergeFrom(node))).To(Succeed())
		node.ObjectMeta = cp.ObjectMeta
		Expect(node.ResourceVersion).NotTo(Equal(before.ResourceVersion))

		By("another writer (a heartbeat) changing status after that")
		other := &corev1.Node{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(node), other)).To(Succeed())
		other.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.7"}}
		Expect(k8sClient.Status().Update(ctx, other)).To(Succeed())

		node.Status.Conditions = []corev1.NodeCondition{{Type: "CobaltProbe", Status: corev1.ConditionTrue, Reason: "Patched"}}
		Expect(patchStatus(ctx, k8sClient, before, node)).To(Succeed())

		got := &corev1.Node{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(node), got)).To(Succeed())
		Expect(got.Status.Conditions).To(ContainElement(HaveField("Reason", "Patched")), "the status change is written")
		Expect(got.Status.Addresses).To(ContainElement(HaveField("Address", "10.0.0.7")), "the other writer's field is kept")
		Expect(got.Labels).To(HaveKeyWithValue("phase", "done"))
	})

	It("with a lock, writes nothing over a status another writer changed since the read, and is no error", func(ctx context.Context) {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: uniqueName("patch-locked")}}
		Expect(k8sClient.Create(ctx, node)).To(Succeed())
		before := node.DeepCopy()

		By("another writer (the node serving a volume) changing a list in status after the read")
		other := &corev1.Node{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(node), other)).To(Succeed())
		other.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.8"}}
		Expect(k8sClient.Status().Update(ctx, other)).To(Succeed())

		node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.9"}}
		stale, err := patchStatusLocked(ctx, k8sClient, before, node)
		Expect(err).NotTo(HaveOccurred())
		Expect(stale).To(BeTrue(), "the caller is told to compute the status again")
		got := &corev1.Node{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(node), got)).To(Succeed())
		Expect(got.Status.Addresses).To(ConsistOf(HaveField("Address", "10.0.0.8")), "the other writer's list stands")

		By("computed again from the newer object, the patch is written")
		before = got.DeepCopy()
		got.Status.Addresses = append(got.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeHostName, Address: "n1"})
		stale, err = patchStatusLocked(ctx, k8sClient, before, got)
		Expect(err).NotTo(HaveOccurred())
		Expect(stale).To(BeFalse())
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(node), got)).To(Succeed())
		Expect(got.Status.Addresses).To(HaveLen(2))
	})
})
