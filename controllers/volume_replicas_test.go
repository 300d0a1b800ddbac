package controllers

import (
	"context"
	"errors"
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/types"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

var _ = Describe("Replicated Volumes", func() {
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
	volumeCondition := func(ctx context.Context, name, t string) func(Gomega) metav1.Condition {
		return func(g Gomega) metav1.Condition {
			return condition(getVolume(ctx, name)(g).Status.Conditions, t)
		}
	}
	replicated := func(name, size string, replicas int32) *v1alpha1.Volume {
		v := newVolume(ns, name, size)
		v.Spec.Replicas = replicas
		return v
	}
	// zonedStore creates a Node in zone (no zone label when empty) and a Ready Store on it.
	zonedStore := func(ctx context.Context, zone, capacity string) *v1alpha1.Store {
		node := uniqueName("node")
		labels := map[string]string{}
		if zone != "" {
			labels[corev1.LabelTopologyZone] = zone
		}
		createNode(ctx, node, labels)
		return createReadyStore(ctx, cluster, uniqueName("s"), node, capacity, "0", nil)
	}
	// copyStores is where the volume's copies went, once it is placed.
	copyStores := func(ctx context.Context, name string) []string {
		GinkgoHelper()
		Eventually(getVolume(ctx, name)).Should(HaveField("Spec.ReplicaStoreNames", Not(BeEmpty())))
		return getVolume(ctx, name)(Default).PlacedStores()
	}
	inSync := func(store *v1alpha1.Store, size string) types.GomegaMatcher {
		return And(HaveField("Store", store.Name), HaveField("Node", store.Spec.NodeName),
			HaveField("State", v1alpha1.ReplicaInSync), HaveField("AllocatedSize", HaveValue(equalQuantity(size))))
	}

	It("places three copies on three nodes in distinct zones, creates, grows and deletes every copy", func(ctx context.Context) {
		a1 := zonedStore(ctx, "za", "100Gi")
		zonedStore(ctx, "za", "90Gi") // more room than b and c, but in a zone that has a copy already
		b := zonedStore(ctx, "zb", "30Gi")
		c := zonedStore(ctx, "zc", "20Gi")

		Expect(k8sClient.Create(ctx, replicated("db", "10Gi", 3))).To(Succeed())
		Expect(copyStores(ctx, "db")).To(Equal([]string{a1.Name, b.Name, c.Name}), "first the most free space, then a new zone each")
		Eventually(volumeCondition(ctx, "db", v1alpha1.ConditionReady)).Should(And(HaveField("Status", metav1.ConditionTrue),
			HaveField("Reason", v1alpha1.ReasonProvisioned)))
		vol := getVolume(ctx, "db")(Default)
		Expect(vol.Status.Replicas).To(ConsistOf(inSync(a1, "10Gi"), inSync(b, "10Gi"), inSync(c, "10Gi")))
		Expect(vol.Status.InSyncReplicas).To(Equal(int32(3)))
		Expect(vol.Status.Placement).To(HaveValue(Equal(v1alpha1.VolumePlacement{Store: a1.Name, Node: a1.Spec.NodeName})),
			"placement is the first copy, for consumers that need one Store")
		Expect(condition(vol.Status.Conditions, v1alpha1.ConditionDegraded)).To(And(HaveField("Status", metav1.ConditionFalse),
			HaveField("Reason", v1alpha1.ReasonReplicasInSync)))
		for _, s := range []*v1alpha1.Store{a1, b, c} {
			n, ok := nodes.Allocated(s.Name, vol)
			Expect(ok).To(BeTrue(), "a copy on %s", s.Name)
			Expect(n).To(Equal(int64(10 << 30)))
		}

		out := kubectl(ctx, "get", "volumes", "-n", ns)
		GinkgoWriter.Print(out)
		Expect(out).To(MatchRegexp(`db\s+10Gi\s+10Gi\s+Filesystem\s+` + a1.Name + `\s+3\s+3\s+False\s+ReplicasInSync\s+True\s+Provisioned\s+`))

		By("growing: every copy grows")
		Eventually(func() error {
			v := getVolume(ctx, "db")(Default)
			v.Spec.Size = resource.MustParse("15Gi")
			return k8sClient.Update(ctx, v)
		}).Should(Succeed())
		Eventually(getVolume(ctx, "db")).Should(HaveField("Status.AllocatedSize", HaveValue(equalQuantity("15Gi"))))
		for _, s := range []*v1alpha1.Store{a1, b, c} {
			n, _ := nodes.Allocated(s.Name, vol)
			Expect(n).To(Equal(int64(15<<30)), "the copy on %s", s.Name)
		}

		By("deleting: every copy is freed before the Volume goes")
		deleteAndWait(ctx, vol)
		for _, s := range []*v1alpha1.Store{a1, b, c} {
			_, held := nodes.Allocated(s.Name, vol)
			Expect(held).To(BeFalse(), "the copy on %s is freed", s.Name)
			Expect(nodes.Calls()).To(ContainElement(fmt.Sprintf("delete %s %s/db", s.Name, ns)))
		}
	})

	It("says why copies cannot go to distinct nodes, and places them on distinct Stores of one node when allowed", func(ctx context.Context) {
		node := uniqueName("node")
		s1 := createReadyStore(ctx, cluster, uniqueName("s"), node, "100Gi", "0", nil)
		s2 := createReadyStore(ctx, cluster, uniqueName("s"), node, "50Gi", "0", nil)

		Expect(k8sClient.Create(ctx, replicated("lab", "10Gi", 2))).To(Succeed())
		Eventually(volumeCondition(ctx, "lab", v1alpha1.ConditionReady)).Should(And(
			HaveField("Status", metav1.ConditionFalse), HaveField("Reason", v1alpha1.ReasonUnschedulable),
			HaveField("Message", Equal("2 replicas need 2 nodes: 1 node has a Store that can hold 10Gi; "+
				"set spec.replicaPlacement.allowSameNode to place copies on distinct Stores of one node"))))
		Consistently(getVolume(ctx, "lab"), "1s").Should(HaveField("Spec.StoreName", BeEmpty()))

		By("opting in: the copies go to the node's two Stores")
		Eventually(func() error {
			v := getVolume(ctx, "lab")(Default)
			v.Spec.ReplicaPlacement = &v1alpha1.ReplicaPlacement{AllowSameNode: true}
			return k8sClient.Update(ctx, v)
		}).Should(Succeed())
		Expect(copyStores(ctx, "lab")).To(Equal([]string{s1.Name, s2.Name}))
		Eventually(volumeCondition(ctx, "lab", v1alpha1.ConditionReady)).Should(HaveField("Status", metav1.ConditionTrue))
		Expect(getVolume(ctx, "lab")(Default).Status.Replicas).To(ConsistOf(inSync(s1, "10Gi"), inSync(s2, "10Gi")))

		By("a third copy would need a third Store: never two copies on one Store")
		v := replicated("three", "1Gi", 3)
		v.Spec.ReplicaPlacement = &v1alpha1.ReplicaPlacement{AllowSameNode: true}
		Expect(k8sClient.Create(ctx, v)).To(Succeed())
		Eventually(volumeCondition(ctx, "three", v1alpha1.ConditionReady)).Should(And(
			HaveField("Reason", v1alpha1.ReasonUnschedulable),
			HaveField("Message", Equal("3 replicas need 3 Stores: 2 Stores can hold 1Gi"))))
	})

	It("places the other copies around a pinned first copy", func(ctx context.Context) {
		pinned := zonedStore(ctx, "za", "20Gi")
		zonedStore(ctx, "za", "100Gi")
		b := zonedStore(ctx, "zb", "30Gi")
		v := replicated("pinned", "1Gi", 2)
		v.Spec.StoreName = pinned.Name
		Expect(k8sClient.Create(ctx, v)).To(Succeed())
		Expect(copyStores(ctx, "pinned")).To(Equal([]string{pinned.Name, b.Name}))
	})

	It("marks a copy whose Store stops heartbeating Lost and the Volume Degraded; it catches up when the Store returns", func(ctx context.Context) {
		a := zonedStore(ctx, "", "100Gi")
		b := zonedStore(ctx, "", "100Gi")
		Expect(k8sClient.Create(ctx, replicated("d", "1Gi", 2))).To(Succeed())
		Eventually(volumeCondition(ctx, "d", v1alpha1.ConditionDegraded)).Should(HaveField("Status", metav1.ConditionFalse))

		// a stays alive (it beats at the new time before the clock gets there); b does not beat again.
		reportStoreAt(ctx, a.Name, "100Gi", "0", testClock.Now().Add(testHeartbeatTimeout+1e9))
		testClock.Step(testHeartbeatTimeout + 1e9)
		pokeStore(ctx, b.Name)
		Eventually(volumeCondition(ctx, "d", v1alpha1.ConditionDegraded)).Should(And(
			HaveField("Status", metav1.ConditionTrue), HaveField("Reason", v1alpha1.ReasonReplicasNotInSync),
			HaveField("Message", ContainSubstring("1 of 2 copies in sync; copy on store "+b.Name+" Lost: store "+b.Name+" is not Ready"))))
		vol := getVolume(ctx, "d")(Default)
		Expect(vol.Status.InSyncReplicas).To(Equal(int32(1)))
		Expect(condition(vol.Status.Conditions, v1alpha1.ConditionReady)).To(HaveField("Status", metav1.ConditionTrue), "one copy still serves")

		heartbeat(ctx, b.Name, "100Gi", "0")
		Eventually(getVolume(ctx, "d")).Should(HaveField("Status.Replicas", ContainElement(And(
			HaveField("Store", b.Name), HaveField("State", v1alpha1.ReplicaCatchingUp)))))
		Expect(getVolume(ctx, "d")(Default).Status.InSyncReplicas).To(Equal(int32(1)),
			"only the replicated data path may call a returning copy in sync")
	})

	It("keeps the Volume until every copy is freed, and frees the copies it can meanwhile", func(ctx context.Context) {
		a := zonedStore(ctx, "", "100Gi")
		b := zonedStore(ctx, "", "100Gi")
		Expect(k8sClient.Create(ctx, replicated("gone", "1Gi", 2))).To(Succeed())
		Eventually(volumeCondition(ctx, "gone", v1alpha1.ConditionReady)).Should(HaveField("Status", metav1.ConditionTrue))
		vol := getVolume(ctx, "gone")(Default)

		nodes.Fail(b.Name, errors.New("node unreachable"))
		DeferCleanup(func() { nodes.Fail(b.Name, nil) })
		Expect(k8sClient.Delete(ctx, vol)).To(Succeed())
		Eventually(volumeCondition(ctx, "gone", v1alpha1.ConditionReady)).Should(And(
			HaveField("Reason", v1alpha1.ReasonDeleteFailed), HaveField("Message", ContainSubstring("node unreachable"))))
		Eventually(func() bool { _, held := nodes.Allocated(a.Name, vol); return held }).Should(BeFalse(), "the healthy copy is freed")
		_, held := nodes.Allocated(b.Name, vol)
		Expect(held).To(BeTrue())
		Consistently(func() error { return k8sClient.Get(ctx, client.ObjectKeyFromObject(vol), &v1alpha1.Volume{}) }, "1s").
			Should(Succeed(), "the finalizer stays while a copy is left")

		nodes.Fail(b.Name, nil)
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(vol), &v1alpha1.Volume{}))
		}, "10s").Should(BeTrue())
		_, held = nodes.Allocated(b.Name, vol)
		Expect(held).To(BeFalse())
	})

	It("blocks a Store's deletion while a copy of a Volume is on it", func(ctx context.Context) {
		a := zonedStore(ctx, "", "100Gi")
		b := zonedStore(ctx, "", "50Gi")
		Expect(k8sClient.Create(ctx, replicated("held", "1Gi", 2))).To(Succeed())
		Expect(copyStores(ctx, "held")).To(Equal([]string{a.Name, b.Name}))
		Expect(k8sClient.Delete(ctx, b)).To(Succeed())
		Eventually(func(g Gomega) metav1.Condition {
			st := &v1alpha1.Store{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(b), st)).To(Succeed())
			return condition(st.Status.Conditions, v1alpha1.ConditionReady)
		}).Should(HaveField("Message", Equal("deletion waits for 1 Volume(s) placed on this store: "+ns+"/held")))

		deleteAndWait(ctx, getVolume(ctx, "held")(Default))
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(b), &v1alpha1.Store{}))
		}).Should(BeTrue(), "the Store goes once the copy on it is freed")
	})
})
