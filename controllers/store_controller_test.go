package controllers

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

var _ = Describe("Store reconciler", func() {
	var (
		cluster *v1alpha1.StorageCluster
		store   *v1alpha1.Store
	)
	BeforeEach(func(ctx context.Context) {
		cluster = newFileCluster(createNamespace(ctx), "sc")
		store = newStore(uniqueName("store"), cluster, "node-a")
		Expect(k8sClient.Create(ctx, store)).To(Succeed())
		DeferCleanup(func(ctx context.Context) { deleteAndWait(ctx, store) })
	})

	// storeCondition polls the Store's condition of type t.
	storeCondition := func(ctx context.Context, t string) func(Gomega) metav1.Condition {
		return func(g Gomega) metav1.Condition {
			s := &v1alpha1.Store{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(store), s)).To(Succeed())
			return condition(s.Status.Conditions, t)
		}
	}
	poke := func(ctx context.Context) { pokeStore(ctx, store.Name) }

	It("goes from awaiting a heartbeat to Ready, to stale after the timeout, and back", func(ctx context.Context) {
		Eventually(storeCondition(ctx, v1alpha1.ConditionReady)).Should(And(
			HaveField("Status", metav1.ConditionFalse), HaveField("Reason", v1alpha1.ReasonAwaitingHeartbeat)))

		heartbeat(ctx, store.Name, "100Gi", "10Gi")
		Eventually(storeCondition(ctx, v1alpha1.ConditionReady)).Should(And(
			HaveField("Status", metav1.ConditionTrue), HaveField("Reason", v1alpha1.ReasonHeartbeatFresh)))
		Eventually(storeCondition(ctx, v1alpha1.ConditionSchedulable)).Should(HaveField("Status", metav1.ConditionTrue))

		By("letting the heartbeat age just under the timeout")
		testClock.Step(testHeartbeatTimeout - 5e9)
		poke(ctx)
		Consistently(storeCondition(ctx, v1alpha1.ConditionReady), "1s").Should(HaveField("Status", metav1.ConditionTrue))

		By("letting it age past the timeout")
		testClock.Step(10e9)
		poke(ctx)
		Eventually(storeCondition(ctx, v1alpha1.ConditionReady)).Should(And(
			HaveField("Status", metav1.ConditionFalse), HaveField("Reason", v1alpha1.ReasonHeartbeatStale),
			HaveField("Message", ContainSubstring("older than the 1m0s timeout"))))
		Eventually(storeCondition(ctx, v1alpha1.ConditionSchedulable)).Should(And(
			HaveField("Status", metav1.ConditionFalse), HaveField("Reason", v1alpha1.ReasonStoreNotReady)))

		By("receiving a new heartbeat")
		heartbeat(ctx, store.Name, "100Gi", "10Gi")
		Eventually(storeCondition(ctx, v1alpha1.ConditionReady)).Should(HaveField("Status", metav1.ConditionTrue))
	})

	It("stays not Ready, saying so, until its node daemon publishes its endpoint", func(ctx context.Context) {
		reportStore(ctx, store.Name, "100Gi", "10Gi")
		Eventually(storeCondition(ctx, v1alpha1.ConditionReady)).Should(And(
			HaveField("Status", metav1.ConditionFalse), HaveField("Reason", v1alpha1.ReasonEndpointPending),
			HaveField("Message", ContainSubstring("publishes no API endpoint (annotation storage.cobalt.io/node-endpoint)"))))
		Eventually(storeCondition(ctx, v1alpha1.ConditionSchedulable)).Should(And(
			HaveField("Status", metav1.ConditionFalse), HaveField("Reason", v1alpha1.ReasonStoreNotReady)))
		poke(ctx)
		Consistently(storeCondition(ctx, v1alpha1.ConditionReady), "1s").Should(HaveField("Reason", v1alpha1.ReasonEndpointPending))

		publishEndpoint(ctx, store.Name)
		Eventually(storeCondition(ctx, v1alpha1.ConditionReady)).Should(And(
			HaveField("Status", metav1.ConditionTrue), HaveField("Reason", v1alpha1.ReasonHeartbeatFresh)))
		Eventually(storeCondition(ctx, v1alpha1.ConditionSchedulable)).Should(HaveField("Status", metav1.ConditionTrue))
	})

	It("is drained by admin state out and admitted again by in", func(ctx context.Context) {
		heartbeat(ctx, store.Name, "100Gi", "10Gi")
		Eventually(storeCondition(ctx, v1alpha1.ConditionSchedulable)).Should(HaveField("Status", metav1.ConditionTrue))

		setAdmin := func(state v1alpha1.AdminState) {
			Eventually(func() error {
				s := &v1alpha1.Store{}
				if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(store), s); err != nil {
					return err
				}
				s.Spec.AdminState = state
				return k8sClient.Update(ctx, s)
			}).Should(Succeed())
		}
		setAdmin(v1alpha1.AdminStateOut)
		Eventually(storeCondition(ctx, v1alpha1.ConditionSchedulable)).Should(And(
			HaveField("Status", metav1.ConditionFalse), HaveField("Reason", v1alpha1.ReasonAdminOut)))
		Expect(storeCondition(ctx, v1alpha1.ConditionReady)(Default)).To(HaveField("Status", metav1.ConditionTrue),
			"a drained Store still serves its volumes")

		setAdmin(v1alpha1.AdminStateIn)
		Eventually(storeCondition(ctx, v1alpha1.ConditionSchedulable)).Should(HaveField("Status", metav1.ConditionTrue))
	})

	It("reports a device the node daemon did not use, and a nearly full store", func(ctx context.Context) {
		Eventually(func() error {
			s := &v1alpha1.Store{}
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(store), s); err != nil {
				return err
			}
			s.Status.NotUsedReason = "device has an ext4 filesystem"
			s.Status.LastHeartbeat = &metav1.Time{Time: testClock.Now()}
			return k8sClient.Status().Update(ctx, s)
		}).Should(Succeed())
		Eventually(storeCondition(ctx, v1alpha1.ConditionReady)).Should(And(
			HaveField("Reason", v1alpha1.ReasonDeviceNotUsed),
			HaveField("Message", ContainSubstring("device has an ext4 filesystem"))))

		other := newStore(uniqueName("store"), cluster, "node-b")
		Expect(k8sClient.Create(ctx, other)).To(Succeed())
		DeferCleanup(func(ctx context.Context) { deleteAndWait(ctx, other) })
		heartbeat(ctx, other.Name, "100Gi", "95Gi")
		Eventually(func(g Gomega) metav1.Condition {
			s := &v1alpha1.Store{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(other), s)).To(Succeed())
			return condition(s.Status.Conditions, v1alpha1.ConditionDegraded)
		}).Should(And(HaveField("Status", metav1.ConditionTrue), HaveField("Reason", v1alpha1.ReasonNearlyFull),
			HaveField("Message", Equal("the store is 95% full (threshold 90%)"))))
	})
})
