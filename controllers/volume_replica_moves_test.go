package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

var _ = Describe("Replicated Volumes: replacing and moving copies", func() {
	var (
		ns      string
		cluster *v1alpha1.StorageCluster
	)
	BeforeEach(func(ctx context.Context) {
		ns = createNamespace(ctx)
		cluster = newFileCluster(ns, "sc")
		Expect(k8sClient.Create(ctx, cluster)).To(Succeed())
		DeferCleanup(func(ctx context.Context) {
			deleteVolumesAndStores(ctx, ns)
		})
	})

	getVolume := func(ctx context.Context, name string) func(Gomega) *v1alpha1.Volume {
		return func(g Gomega) *v1alpha1.Volume {
			v := &v1alpha1.Volume{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, v)).To(Succeed())
			return v
		}
	}
	degraded := func(ctx context.Context, name string) func(Gomega) metav1.Condition {
		return func(g Gomega) metav1.Condition {
			return condition(getVolume(ctx, name)(g).Status.Conditions, v1alpha1.ConditionDegraded)
		}
	}
	// nodeStore creates a Ready Store on a node of its own; Stores are made in order of
	// decreasing capacity so that placement (most free space first) is predictable.
	nodeStore := func(ctx context.Context, capacity string) *v1alpha1.Store {
		node := uniqueName("node")
		createNode(ctx, node, nil)
		return createReadyStore(ctx, cluster, uniqueName("s"), node, capacity, "0", nil)
	}
	// stepClock moves the fake clock by d and keeps the Stores in alive beating.
	// stepClock moves the fake clock d ahead; the alive Stores beat at the new time first, so no
	// reconcile in between can see their heartbeat stale.
	stepClock := func(ctx context.Context, d time.Duration, alive ...*v1alpha1.Store) {
		at := testClock.Now().Add(d)
		for _, s := range alive {
			publishEndpoint(ctx, s.Name)
			reportStoreAt(ctx, s.Name, "100Gi", "0", at)
		}
		testClock.Step(d)
	}
	// setState does what the serving node does: it records a copy's new state with optimistic
	// locking.
	setState := func(ctx context.Context, name, store string, state v1alpha1.ReplicaState) {
		Eventually(func(g Gomega) {
			v := getVolume(ctx, name)(g)
			e := findReplica(v.Status.Replicas, store)
			g.Expect(e).NotTo(BeNil(), "copy on %s is listed", store)
			e.State, e.Message = state, ""
			g.Expect(k8sClient.Status().Update(ctx, v)).To(Succeed())
		}).Should(Succeed())
	}
	events := func(ctx context.Context, name string) func(Gomega) []eventsv1.Event {
		return func(g Gomega) []eventsv1.Event {
			var evs eventsv1.EventList
			g.Expect(k8sClient.List(ctx, &evs, client.InNamespace(ns))).To(Succeed())
			var out []eventsv1.Event
			for _, e := range evs.Items {
				if e.Regarding.Name == name {
					out = append(out, e)
				}
			}
			return out
		}
	}
	event := func(reason, note string) OmegaMatcher {
		return And(HaveField("Reason", reason), HaveField("Note", ContainSubstring(note)))
	}
	state := func(store string, s v1alpha1.ReplicaState) OmegaMatcher {
		return And(HaveField("Store", store), HaveField("State", s))
	}
	// replicatedReady creates a Volume with two copies on a and b and waits until both are in
	// sync.
	replicatedReady := func(ctx context.Context, name string, a, b *v1alpha1.Store) *v1alpha1.Volume {
		v := newVolume(ns, name, "1Gi")
		v.Spec.Replicas, v.Spec.StoreName, v.Spec.ReplicaStoreNames = 2, a.Name, []string{b.Name}
		Expect(k8sClient.Create(ctx, v)).To(Succeed())
		Eventually(getVolume(ctx, name)).Should(HaveField("Status.InSyncReplicas", int32(2)))
		return getVolume(ctx, name)(Default)
	}

	It("replaces a copy Lost for longer than the delay on another Store, rebuilds it, and deletes the old copy when its Store returns", func(ctx context.Context) {
		a, b := nodeStore(ctx, "300Gi"), nodeStore(ctx, "200Gi")
		c := nodeStore(ctx, "100Gi")
		vol := replicatedReady(ctx, "db", a, b)

		By("b stops beating: its copy is Lost, since the reconcile that saw it")
		stepClock(ctx, testHeartbeatTimeout+time.Second, a, c)
		lostAt := testClock.Now()
		pokeStore(ctx, b.Name)
		Eventually(getVolume(ctx, "db")).Should(HaveField("Status.Replicas", ContainElement(And(state(b.Name, v1alpha1.ReplicaLost),
			HaveField("LostSince", HaveValue(HaveField("Time", BeTemporally("==", lostAt))))))))
		Eventually(events(ctx, "db")).Should(ContainElement(event("ReplicaLost", "copy on store "+b.Name+" lost")))

		By("within the delay: nothing moves")
		stepClock(ctx, testReplacementDelay/2, a, c)
		pokeStore(ctx, b.Name)
		Consistently(getVolume(ctx, "db"), "1s").Should(HaveField("Spec.ReplicaStoreNames", Equal([]string{b.Name})))

		By("past the delay: the copy is replaced on c, which starts empty (CatchingUp)")
		stepClock(ctx, testReplacementDelay/2+time.Second, a, c)
		pokeStore(ctx, b.Name)
		Eventually(getVolume(ctx, "db")).Should(HaveField("Spec.ReplicaStoreNames", Equal([]string{c.Name})))
		Eventually(getVolume(ctx, "db")).Should(And(
			HaveField("Status.Replicas", ConsistOf(state(a.Name, v1alpha1.ReplicaInSync), And(state(c.Name, v1alpha1.ReplicaCatchingUp),
				HaveField("Message", ContainSubstring("replaces the copy on store "+b.Name)), HaveField("Message", ContainSubstring("being rebuilt"))))),
			HaveField("Status.RetiredReplicas", ConsistOf(HaveField("Store", b.Name))),
			HaveField("Status.InSyncReplicas", int32(1))))
		Expect(getVolume(ctx, "db")(Default).Spec.StoreName).To(Equal(a.Name))
		Eventually(degraded(ctx, "db")).Should(And(HaveField("Status", metav1.ConditionTrue), HaveField("Reason", v1alpha1.ReasonRebuilding)))
		_, onC := nodes.Allocated(c.Name, vol)
		Expect(onC).To(BeTrue(), "the new copy is created on c")
		Eventually(events(ctx, "db")).Should(ContainElements(
			event("ReplicaReplaced", fmt.Sprintf("copy on store %s (Lost since %s) replaced by a new copy on store %s",
				b.Name, lostAt.UTC().Format(time.RFC3339), c.Name)),
			event("ReplicaRetired", "the copy on store "+b.Name+" was replaced")))

		out := kubectl(ctx, "get", "volumes", "-n", ns)
		GinkgoWriter.Print(out)
		Expect(out).To(MatchRegexp(`db\s+1Gi\s+1Gi\s+Filesystem\s+` + a.Name + `\s+2\s+1\s+True\s+Rebuilding\s+True\s+Provisioned\s+`))

		By("the serving node rebuilt c: the Volume is no longer Degraded")
		setState(ctx, "db", c.Name, v1alpha1.ReplicaInSync)
		Eventually(degraded(ctx, "db")).Should(And(HaveField("Status", metav1.ConditionFalse), HaveField("Reason", v1alpha1.ReasonReplicasInSync)))
		Expect(getVolume(ctx, "db")(Default).Status.InSyncReplicas).To(Equal(int32(2)))
		Eventually(events(ctx, "db")).Should(ContainElement(event("ReplicaInSync", "copy on store "+c.Name+" is in sync again")))
		_, onB := nodes.Allocated(b.Name, vol)
		Expect(onB).To(BeTrue(), "b's leftover copy waits for b")

		By("b returns: its leftover copy is deleted there, and it is not a copy again")
		heartbeat(ctx, b.Name, "100Gi", "0")
		Eventually(func() bool { _, held := nodes.Allocated(b.Name, vol); return held }).Should(BeFalse())
		Eventually(getVolume(ctx, "db")).Should(HaveField("Status.RetiredReplicas", BeEmpty()))
		v := getVolume(ctx, "db")(Default)
		Expect(v.PlacedStores()).To(Equal([]string{a.Name, c.Name}))
		Expect(v.Status.Replicas).To(HaveLen(2))
	})

	It("lets a copy that returns within the delay catch up instead of replacing it", func(ctx context.Context) {
		a, b := nodeStore(ctx, "300Gi"), nodeStore(ctx, "200Gi")
		c := nodeStore(ctx, "100Gi")
		replicatedReady(ctx, "back", a, b)

		stepClock(ctx, testHeartbeatTimeout+time.Second, a, c)
		pokeStore(ctx, b.Name)
		Eventually(getVolume(ctx, "back")).Should(HaveField("Status.Replicas", ContainElement(state(b.Name, v1alpha1.ReplicaLost))))
		stepClock(ctx, testReplacementDelay-2*time.Minute, a, c)
		heartbeat(ctx, b.Name, "100Gi", "0")
		Eventually(getVolume(ctx, "back")).Should(HaveField("Status.Replicas", ContainElement(And(state(b.Name, v1alpha1.ReplicaCatchingUp),
			HaveField("LostSince", BeNil())))))
		Eventually(degraded(ctx, "back")).Should(HaveField("Reason", v1alpha1.ReasonRebuilding))

		By("the delay passes: a copy catching up is not replaced")
		stepClock(ctx, testReplacementDelay, a, b, c)
		pokeStore(ctx, b.Name)
		Consistently(getVolume(ctx, "back"), "1s").Should(And(HaveField("Spec.ReplicaStoreNames", Equal([]string{b.Name})),
			HaveField("Status.RetiredReplicas", BeEmpty())))
	})

	It("drains a Store set out: the new copy is rebuilt while the old one stays, then the old one is retired and deleted", func(ctx context.Context) {
		a, b := nodeStore(ctx, "300Gi"), nodeStore(ctx, "200Gi")
		c := nodeStore(ctx, "100Gi")
		vol := replicatedReady(ctx, "moving", a, b)

		Eventually(func() error {
			s := &v1alpha1.Store{}
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(b), s); err != nil {
				return err
			}
			s.Spec.AdminState = v1alpha1.AdminStateOut
			return k8sClient.Update(ctx, s)
		}).Should(Succeed())
		Eventually(getVolume(ctx, "moving")).Should(HaveField("Spec.ReplicaStoreNames", Equal([]string{c.Name})))
		Eventually(getVolume(ctx, "moving")).Should(And(
			HaveField("Status.Replicas", HaveExactElements(state(a.Name, v1alpha1.ReplicaInSync), state(c.Name, v1alpha1.ReplicaCatchingUp),
				state(b.Name, v1alpha1.ReplicaInSync))),
			HaveField("Status.InSyncReplicas", int32(2))))
		Eventually(degraded(ctx, "moving")).Should(And(HaveField("Status", metav1.ConditionFalse), HaveField("Reason", v1alpha1.ReasonMoving),
			HaveField("Message", ContainSubstring("takes over from the copy on store "+b.Name))))
		Eventually(events(ctx, "moving")).Should(ContainElement(event("ReplicaMoving", "store "+b.Name+" is set out: its copy moves to store "+c.Name)))

		By("a fails a write while c is rebuilt: b, the last copy in sync but one, is kept")
		setState(ctx, "moving", a.Name, v1alpha1.ReplicaCatchingUp)
		Eventually(degraded(ctx, "moving")).Should(And(HaveField("Status", metav1.ConditionTrue), HaveField("Reason", v1alpha1.ReasonRebuilding)))
		Consistently(getVolume(ctx, "moving"), "1s").Should(HaveField("Status.Replicas", ContainElement(state(b.Name, v1alpha1.ReplicaInSync))))
		_, onB := nodes.Allocated(b.Name, vol)
		Expect(onB).To(BeTrue())

		By("a and c in sync: b is retired and deleted on its node")
		setState(ctx, "moving", a.Name, v1alpha1.ReplicaInSync)
		setState(ctx, "moving", c.Name, v1alpha1.ReplicaInSync)
		Eventually(getVolume(ctx, "moving")).Should(And(
			HaveField("Status.Replicas", HaveExactElements(state(a.Name, v1alpha1.ReplicaInSync), state(c.Name, v1alpha1.ReplicaInSync))),
			HaveField("Status.RetiredReplicas", BeEmpty())))
		Eventually(func() bool { _, held := nodes.Allocated(b.Name, vol); return held }).Should(BeFalse())
		Eventually(degraded(ctx, "moving")).Should(HaveField("Reason", v1alpha1.ReasonReplicasInSync))
		Eventually(events(ctx, "moving")).Should(ContainElements(
			event("ReplicaRetired", "the copy on store "+b.Name+" moved"),
			event("Freed", "retired copy deleted on store "+b.Name)))
	})

	It("keeps the Volume until a retired copy is deleted, and frees it with the others", func(ctx context.Context) {
		a, b := nodeStore(ctx, "300Gi"), nodeStore(ctx, "200Gi")
		c := nodeStore(ctx, "100Gi")
		vol := replicatedReady(ctx, "bye", a, b)

		// b's node is down: its Store stops beating and its daemon does not answer.
		nodes.Fail(b.Name, errors.New("node unreachable"))
		DeferCleanup(func() { nodes.Fail(b.Name, nil) })
		stepClock(ctx, testHeartbeatTimeout+time.Second, a, c)
		pokeStore(ctx, b.Name)
		Eventually(getVolume(ctx, "bye")).Should(HaveField("Status.Replicas", ContainElement(state(b.Name, v1alpha1.ReplicaLost))))
		stepClock(ctx, testReplacementDelay+time.Second, a, c)
		pokeStore(ctx, b.Name)
		Eventually(getVolume(ctx, "bye")).Should(HaveField("Status.RetiredReplicas", ConsistOf(HaveField("Store", b.Name))))

		Expect(k8sClient.Delete(ctx, vol)).To(Succeed())
		Eventually(func() bool { _, held := nodes.Allocated(c.Name, vol); return held }).Should(BeFalse(), "the copies in spec are freed")
		Consistently(func() error { return k8sClient.Get(ctx, client.ObjectKeyFromObject(vol), &v1alpha1.Volume{}) }, "1s").
			Should(Succeed(), "the finalizer stays while the retired copy on b is left")
		Expect(nodes.Calls()).To(ContainElement(fmt.Sprintf("delete %s %s/bye", b.Name, ns)), "deleting the retired copy was tried")

		By("b's node answers again: the Volume goes")
		nodes.Fail(b.Name, nil)
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(vol), &v1alpha1.Volume{}))
		}, "15s").Should(BeTrue())
		_, held := nodes.Allocated(b.Name, vol)
		Expect(held).To(BeFalse())
	})
})
