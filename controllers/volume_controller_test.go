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

var _ = Describe("Volume reconciler", func() {
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
	// createPlaced creates a Volume and waits until it is placed, returning its Store's name.
	createPlaced := func(ctx context.Context, v *v1alpha1.Volume) string {
		GinkgoHelper()
		Expect(k8sClient.Create(ctx, v)).To(Succeed())
		Eventually(getVolume(ctx, v.Name)).Should(HaveField("Spec.StoreName", Not(BeEmpty())))
		return getVolume(ctx, v.Name)(Default).Spec.StoreName
	}
	resize := func(ctx context.Context, name, size string) {
		Eventually(func() error {
			v := getVolume(ctx, name)(Default)
			v.Spec.Size = resource.MustParse(size)
			return k8sClient.Update(ctx, v)
		}).Should(Succeed())
	}

	It("places by free capacity, spreads ties to the emptier store, and says why it cannot place", func(ctx context.Context) {
		s20 := createReadyStore(ctx, cluster, uniqueName("s20"), "node-a", "20Gi", "0", nil)
		s50 := createReadyStore(ctx, cluster, uniqueName("s50"), "node-b", "50Gi", "0", nil)
		s40 := createReadyStore(ctx, cluster, uniqueName("s40"), "node-c", "40Gi", "0", nil)

		Expect(createPlaced(ctx, newVolume(ns, "v1", "30Gi"))).To(Equal(s50.Name), "most free space: 50Gi")
		Expect(createPlaced(ctx, newVolume(ns, "v2", "30Gi"))).To(Equal(s40.Name), "40Gi free beats 20Gi and 20Gi")
		Expect(createPlaced(ctx, newVolume(ns, "v3", "15Gi"))).To(Equal(s20.Name), "20Gi free on both; fewer volumes wins")

		v4 := newVolume(ns, "v4", "25Gi")
		Expect(k8sClient.Create(ctx, v4)).To(Succeed())
		Eventually(volumeCondition(ctx, "v4", v1alpha1.ConditionReady)).Should(And(
			HaveField("Status", metav1.ConditionFalse),
			HaveField("Reason", v1alpha1.ReasonUnschedulable),
			HaveField("Message", Equal("no Store can hold 25Gi: 3 Stores considered: 3 too full (largest free space 20Gi)"))))
		Consistently(getVolume(ctx, "v4"), "1s").Should(HaveField("Spec.StoreName", BeEmpty()))
		Eventually(func(g Gomega) []eventsv1.Event {
			var evs eventsv1.EventList
			g.Expect(k8sClient.List(ctx, &evs, client.InNamespace(ns))).To(Succeed())
			return evs.Items
		}).Should(ContainElement(And(HaveField("Regarding.Name", "v4"), HaveField("Reason", v1alpha1.ReasonUnschedulable),
			HaveField("Type", "Warning"), HaveField("ReportingController", "volume-controller"))),
			"the failure is recorded as an events.k8s.io Event")

		By("adding a Store with room: the waiting volume is placed without waiting for its backoff")
		big := createReadyStore(ctx, cluster, uniqueName("big"), "node-d", "100Gi", "0", nil)
		Eventually(getVolume(ctx, "v4")).Should(HaveField("Spec.StoreName", big.Name))
		Eventually(volumeCondition(ctx, "v4", v1alpha1.ConditionReady)).Should(HaveField("Status", metav1.ConditionTrue))
	})

	It("waits for a Store's node daemon endpoint before placing on it and calls the node only then", func(ctx context.Context) {
		name := uniqueName("pending")
		Expect(k8sClient.Create(ctx, newStore(name, cluster, "node-a"))).To(Succeed())
		reportStore(ctx, name, "100Gi", "0")

		v := newVolume(ns, "early", "1Gi")
		Expect(k8sClient.Create(ctx, v)).To(Succeed())
		Eventually(volumeCondition(ctx, "early", v1alpha1.ConditionReady)).Should(And(
			HaveField("Status", metav1.ConditionFalse),
			HaveField("Reason", v1alpha1.ReasonUnschedulable),
			HaveField("Message", Equal("no Store can hold 1Gi: 1 Stores considered: 1 endpoint pending"))))
		Consistently(getVolume(ctx, "early"), "1s").Should(HaveField("Spec.StoreName", BeEmpty()))
		creates := func() int {
			n := 0
			for _, c := range nodes.Calls() {
				if c == "create "+name+" "+ns+"/early" {
					n++
				}
			}
			return n
		}
		Expect(creates()).To(BeZero(), "the node is not asked before it can be reached")

		By("publishing the endpoint: the Volume is placed and created, without waiting for its backoff")
		publishEndpoint(ctx, name)
		Eventually(volumeCondition(ctx, "early", v1alpha1.ConditionReady)).Should(HaveField("Status", metav1.ConditionTrue))
		vol := getVolume(ctx, "early")(Default)
		Expect(vol.Spec.StoreName).To(Equal(name))
		// A reconcile that runs before the cache shows the first one's status asks again; create is
		// idempotent on the node, so only "at least once, and only now" is the contract.
		Expect(creates()).To(BeNumerically(">=", 1), "the node is asked once it can be reached")
	})

	It("honors storeSelector and nodeSelector", func(ctx context.Context) {
		zoneA, zoneB := uniqueName("node"), uniqueName("node")
		createNode(ctx, zoneA, map[string]string{"topology.kubernetes.io/zone": "a"})
		createNode(ctx, zoneB, map[string]string{"topology.kubernetes.io/zone": "b"})
		ssd := createReadyStore(ctx, cluster, uniqueName("ssd"), zoneA, "10Gi", "0", nil)
		hdd := createReadyStore(ctx, cluster, uniqueName("hdd"), zoneB, "1Ti", "0",
			map[string]string{v1alpha1.LabelDeviceClass: string(v1alpha1.DeviceClassHDD)})

		v := newVolume(ns, "fast", "5Gi")
		v.Spec.StoreSelector = &metav1.LabelSelector{MatchLabels: map[string]string{v1alpha1.LabelDeviceClass: "ssd"}}
		Expect(createPlaced(ctx, v)).To(Equal(ssd.Name), "the hdd store has more room but is not selected")

		v = newVolume(ns, "zoned", "5Gi")
		v.Spec.NodeSelector = map[string]string{"topology.kubernetes.io/zone": "b"}
		Expect(createPlaced(ctx, v)).To(Equal(hdd.Name))

		v = newVolume(ns, "nowhere", "1Gi")
		v.Spec.NodeSelector = map[string]string{"topology.kubernetes.io/zone": "c"}
		Expect(k8sClient.Create(ctx, v)).To(Succeed())
		Eventually(volumeCondition(ctx, "nowhere", v1alpha1.ConditionReady)).Should(And(
			HaveField("Reason", v1alpha1.ReasonUnschedulable),
			HaveField("Message", Equal("no Store can hold 1Gi: 2 Stores considered: 2 not matching nodeSelector"))))
	})

	It("skips stores that are not Ready or drained", func(ctx context.Context) {
		stale := createReadyStore(ctx, cluster, uniqueName("stale"), "node-a", "100Gi", "0", nil)
		out := createReadyStore(ctx, cluster, uniqueName("out"), "node-b", "100Gi", "0", nil)
		Eventually(func() error {
			s := &v1alpha1.Store{}
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(out), s); err != nil {
				return err
			}
			s.Spec.AdminState = v1alpha1.AdminStateOut
			return k8sClient.Update(ctx, s)
		}).Should(Succeed())
		testClock.Step(testHeartbeatTimeout + 1e9)
		heartbeat(ctx, out.Name, "100Gi", "0") // out stays alive; stale does not beat again
		pokeStore(ctx, stale.Name)
		Eventually(func(g Gomega) metav1.Condition {
			s := &v1alpha1.Store{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(stale), s)).To(Succeed())
			return condition(s.Status.Conditions, v1alpha1.ConditionReady)
		}).Should(HaveField("Reason", v1alpha1.ReasonHeartbeatStale))

		Expect(k8sClient.Create(ctx, newVolume(ns, "v", "1Gi"))).To(Succeed())
		Eventually(volumeCondition(ctx, "v", v1alpha1.ConditionReady)).Should(And(
			HaveField("Reason", v1alpha1.ReasonUnschedulable),
			HaveField("Message", Equal("no Store can hold 1Gi: 2 Stores considered: 1 not ready, 1 admin out"))))
	})

	It("has the node create the volume, reports node failures, and recovers", func(ctx context.Context) {
		s := createReadyStore(ctx, cluster, uniqueName("s"), "node-a", "100Gi", "0", nil)
		nodes.Fail(s.Name, errors.New("connection refused"))
		DeferCleanup(func() { nodes.Fail(s.Name, nil) })

		v := newVolume(ns, "data", "10Gi")
		v.Spec.VolumeMode = v1alpha1.VolumeModeBlock
		Expect(createPlaced(ctx, v)).To(Equal(s.Name))
		Eventually(volumeCondition(ctx, "data", v1alpha1.ConditionReady)).Should(And(
			HaveField("Status", metav1.ConditionFalse), HaveField("Reason", v1alpha1.ReasonProvisioningFailed),
			HaveField("Message", ContainSubstring("connection refused"))))

		nodes.Fail(s.Name, nil)
		Eventually(volumeCondition(ctx, "data", v1alpha1.ConditionReady), "10s").Should(And(
			HaveField("Status", metav1.ConditionTrue), HaveField("Reason", v1alpha1.ReasonProvisioned)))
		got := getVolume(ctx, "data")(Default)
		Expect(got.Status.AllocatedSize).To(HaveValue(equalQuantity("10Gi")))
		Expect(got.Status.Placement).To(HaveValue(Equal(v1alpha1.VolumePlacement{Store: s.Name, Node: "node-a"})))
		Expect(got.Finalizers).To(ContainElement(VolumeFinalizer))
		n, ok := nodes.Allocated(s.Name, got)
		Expect(ok).To(BeTrue())
		Expect(n).To(Equal(int64(10 << 30)))
	})

	It("passes expansion to the node, and says when the store has no room for it", func(ctx context.Context) {
		s := createReadyStore(ctx, cluster, uniqueName("s"), "node-a", "20Gi", "0", nil)
		Expect(createPlaced(ctx, newVolume(ns, "grow", "10Gi"))).To(Equal(s.Name))
		Eventually(volumeCondition(ctx, "grow", v1alpha1.ConditionReady)).Should(HaveField("Status", metav1.ConditionTrue))

		resize(ctx, "grow", "15Gi")
		Eventually(getVolume(ctx, "grow")).Should(HaveField("Status.AllocatedSize", HaveValue(equalQuantity("15Gi"))))
		Expect(volumeCondition(ctx, "grow", v1alpha1.ConditionResizing)(Default)).To(And(
			HaveField("Status", metav1.ConditionFalse), HaveField("Reason", v1alpha1.ReasonExpanded)))
		n, _ := nodes.Allocated(s.Name, getVolume(ctx, "grow")(Default))
		Expect(n).To(Equal(int64(15 << 30)))

		resize(ctx, "grow", "30Gi")
		Eventually(volumeCondition(ctx, "grow", v1alpha1.ConditionResizing)).Should(And(
			HaveField("Status", metav1.ConditionTrue), HaveField("Reason", v1alpha1.ReasonExpansionFailed),
			HaveField("Message", Equal("store "+s.Name+" has 5Gi free, growing to 30Gi needs 15Gi more"))))
		Expect(volumeCondition(ctx, "grow", v1alpha1.ConditionReady)(Default)).To(HaveField("Status", metav1.ConditionTrue),
			"the volume keeps serving at its old size")
		Expect(getVolume(ctx, "grow")(Default).Status.AllocatedSize).To(HaveValue(equalQuantity("15Gi")))
	})

	It("frees the space on the node before the volume goes, and waits while the node cannot", func(ctx context.Context) {
		s := createReadyStore(ctx, cluster, uniqueName("s"), "node-a", "100Gi", "0", nil)
		Expect(createPlaced(ctx, newVolume(ns, "gone", "10Gi"))).To(Equal(s.Name))
		Eventually(volumeCondition(ctx, "gone", v1alpha1.ConditionReady)).Should(HaveField("Status", metav1.ConditionTrue))
		v := getVolume(ctx, "gone")(Default)

		nodes.Fail(s.Name, errors.New("node unreachable"))
		DeferCleanup(func() { nodes.Fail(s.Name, nil) })
		Expect(k8sClient.Delete(ctx, v)).To(Succeed())
		Eventually(volumeCondition(ctx, "gone", v1alpha1.ConditionReady)).Should(And(
			HaveField("Reason", v1alpha1.ReasonDeleteFailed), HaveField("Message", ContainSubstring("node unreachable"))))
		_, held := nodes.Allocated(s.Name, v)
		Expect(held).To(BeTrue(), "nothing was freed yet")

		nodes.Fail(s.Name, nil)
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(v), &v1alpha1.Volume{}))
		}, "10s").Should(BeTrue())
		_, held = nodes.Allocated(s.Name, v)
		Expect(held).To(BeFalse())
		Expect(nodes.Calls()).To(ContainElement("delete " + s.Name + " " + ns + "/gone"))
	})

	It("keeps a deleted Store until the Volumes on it are gone", func(ctx context.Context) {
		s := createReadyStore(ctx, cluster, uniqueName("s"), "node-a", "100Gi", "0", nil)
		Expect(createPlaced(ctx, newVolume(ns, "pinned", "1Gi"))).To(Equal(s.Name))
		Expect(k8sClient.Delete(ctx, s)).To(Succeed())
		getStore := func(g Gomega) *v1alpha1.Store {
			st := &v1alpha1.Store{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(s), st)).To(Succeed())
			return st
		}
		Eventually(func(g Gomega) metav1.Condition {
			return condition(getStore(g).Status.Conditions, v1alpha1.ConditionReady)
		}).Should(And(HaveField("Reason", v1alpha1.ReasonDeletionBlocked),
			HaveField("Message", Equal("deletion waits for 1 Volume(s) placed on this store: "+ns+"/pinned"))))
		Consistently(getStore, "1s").ShouldNot(BeNil())

		deleteAndWait(ctx, getVolume(ctx, "pinned")(Default))
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(s), &v1alpha1.Store{}))
		}).Should(BeTrue())
	})

	It("never places on a store whose cluster is being deleted", func(ctx context.Context) {
		s := createReadyStore(ctx, cluster, uniqueName("s"), "node-a", "100Gi", "0", nil)
		Expect(createPlaced(ctx, newVolume(ns, "keep", "1Gi"))).To(Equal(s.Name))
		Expect(k8sClient.Delete(ctx, cluster)).To(Succeed())
		Expect(k8sClient.Create(ctx, newVolume(ns, "late", "1Gi"))).To(Succeed())
		Eventually(volumeCondition(ctx, "late", v1alpha1.ConditionReady)).Should(And(
			HaveField("Reason", v1alpha1.ReasonUnschedulable),
			HaveField("Message", Equal("no Store can hold 1Gi: 1 Stores considered: 1 cluster deleting"))))
	})
})
