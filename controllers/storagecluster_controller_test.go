package controllers

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

var _ = Describe("StorageCluster reconciler", func() {
	var cluster *v1alpha1.StorageCluster

	getDaemonSet := func(ctx context.Context) func(Gomega) *appsv1.DaemonSet {
		return func(g Gomega) *appsv1.DaemonSet {
			ds := &appsv1.DaemonSet{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: cluster.Namespace, Name: cluster.Name + "-node-daemon"}, ds)).To(Succeed())
			return ds
		}
	}
	getCluster := func(ctx context.Context) func(Gomega) *v1alpha1.StorageCluster {
		return func(g Gomega) *v1alpha1.StorageCluster {
			c := &v1alpha1.StorageCluster{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(cluster), c)).To(Succeed())
			return c
		}
	}
	updateCluster := func(ctx context.Context, mutate func(*v1alpha1.StorageCluster)) {
		Eventually(func() error {
			c := &v1alpha1.StorageCluster{}
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(cluster), c); err != nil {
				return err
			}
			mutate(c)
			return k8sClient.Update(ctx, c)
		}).Should(Succeed())
	}

	BeforeEach(func(ctx context.Context) {
		cluster = &v1alpha1.StorageCluster{
			ObjectMeta: metav1.ObjectMeta{Namespace: createNamespace(ctx), Name: "prod"},
			Spec: v1alpha1.StorageClusterSpec{
				NodeSelector: map[string]string{"storage": "yes"},
				Tolerations:  []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
				Devices:      v1alpha1.DeviceSelection{Paths: []string{"/dev/nvme0n1", "/dev/nvme1n1"}},
			},
		}
		Expect(k8sClient.Create(ctx, cluster)).To(Succeed())
	})

	It("creates the node daemon's DaemonSet, ServiceAccount and RBAC, owned by the cluster", func(ctx context.Context) {
		Eventually(getDaemonSet(ctx)).Should(Not(BeNil()))
		ds := getDaemonSet(ctx)(Default)
		c := getCluster(ctx)(Default)
		Expect(c.Finalizers).To(ContainElement(StorageClusterFinalizer))

		owner := metav1.GetControllerOf(ds)
		Expect(owner).NotTo(BeNil())
		Expect(owner.UID).To(Equal(c.UID))
		Expect(owner.Kind).To(Equal("StorageCluster"))

		pod := ds.Spec.Template.Spec
		Expect(pod.ServiceAccountName).To(Equal("prod-node-daemon"))
		Expect(pod.NodeSelector).To(Equal(map[string]string{"storage": "yes"}))
		Expect(pod.Tolerations).To(ContainElement(HaveField("Key", "dedicated")))
		Expect(pod.Containers).To(HaveLen(1))
		ctr := pod.Containers[0]
		Expect(ctr.Image).To(Equal(testNodeDaemonImage))
		Expect(ctr.Args).To(ContainElements("--state-dir=/var/lib/cobalt", "--cluster-name=prod", "--cluster-namespace="+cluster.Namespace,
			"--cluster-uid="+string(cluster.UID)))
		Expect(ctr.Args).NotTo(ContainElement(Or(HavePrefix("--device"), HavePrefix("--cache"))),
			"the daemon reads its devices and engine settings from the StorageCluster, not from flags")
		Expect(ds.Spec.Template.Annotations).To(HaveKeyWithValue(specHashAnnotation, HaveLen(16)))
		Expect(ctr.SecurityContext.Privileged).To(Equal(ptr.To(true)), "raw block devices need a privileged container")
		Expect(ctr.LivenessProbe).To(HaveField("HTTPGet.Path", "/healthz"))
		Expect(ctr.ReadinessProbe).To(HaveField("HTTPGet.Path", "/readyz"))
		Expect(ctr.Ports).To(ContainElement(And(HaveField("Name", "grpc"), HaveField("ContainerPort", int32(9443)))))
		Expect(pod.Volumes).To(ContainElements(
			HaveField("HostPath.Path", "/dev"), HaveField("HostPath.Path", "/var/lib/cobalt")))

		By("serving the CSI node plugin: its flags, and the kubelet directory at the same path, Bidirectional")
		Expect(ctr.Args).To(ContainElements(
			"--csi-endpoint=unix://"+testKubeletDir+"/plugins/csi.cobalt.io/csi.sock",
			"--kubelet-registration-dir="+testKubeletDir+"/plugins_registry",
			"--csi-state-dir="+testKubeletDir+"/plugins/csi.cobalt.io/state"))
		Expect(ctr.VolumeMounts).To(ContainElement(And(HaveField("MountPath", testKubeletDir),
			HaveField("MountPropagation", ptr.To(corev1.MountPropagationBidirectional)))))
		Expect(pod.Volumes).To(ContainElement(And(HaveField("HostPath.Path", testKubeletDir),
			HaveField("HostPath.Type", ptr.To(corev1.HostPathDirectory)))))

		sa := &corev1.ServiceAccount{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: cluster.Namespace, Name: "prod-node-daemon"}, sa)).To(Succeed())
		Expect(metav1.GetControllerOf(sa).UID).To(Equal(c.UID))

		roleName := "cobalt-node-daemon-" + cluster.Namespace + "-prod"
		role := &rbacv1.ClusterRole{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: roleName}, role)).To(Succeed())
		Expect(role.Rules).To(ContainElement(And(HaveField("Resources", ConsistOf("stores/status")),
			HaveField("Verbs", ContainElement("patch")))))
		Expect(role.Rules).To(ContainElement(And(HaveField("Resources", ConsistOf("volumes/status")),
			HaveField("Verbs", ContainElements("get", "update")))), "the node serving a replicated volume records its copies' sync state")
		Expect(role.Rules).To(ContainElement(And(HaveField("Resources", ConsistOf("volumes")),
			HaveField("Verbs", ConsistOf("get", "list", "watch")))), "and reads Volumes, never changes their spec")
		binding := &rbacv1.ClusterRoleBinding{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: roleName}, binding)).To(Succeed())
		Expect(binding.Subjects).To(ConsistOf(HaveField("Name", "prod-node-daemon")))

		Eventually(getCluster(ctx)).Should(HaveField("Status.NodeDaemon", "prod-node-daemon"))

		By("giving the node daemon the node API's CA and the right to read only that Secret")
		Expect(ctr.Args).To(ContainElement("--ca-secret=cobalt-ca"))
		Expect(ctr.Env).To(ContainElement(HaveField("ValueFrom.FieldRef.FieldPath", "status.podIP")))
		caCopy := &corev1.Secret{}
		Eventually(func() error {
			return k8sClient.Get(ctx, client.ObjectKey{Namespace: cluster.Namespace, Name: CASecretName}, caCopy)
		}).Should(Succeed())
		Expect(caCopy.Data).To(HaveKeyWithValue("ca.key", []byte("test CA key")))
		caRole := &rbacv1.Role{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: cluster.Namespace, Name: "prod-node-daemon"}, caRole)).To(Succeed())
		Expect(caRole.Rules).To(ConsistOf(
			And(HaveField("Resources", ConsistOf("secrets")),
				HaveField("ResourceNames", ConsistOf(CASecretName)), HaveField("Verbs", ConsistOf("get"))),
			And(HaveField("Resources", ConsistOf("storageclusters")),
				HaveField("ResourceNames", ConsistOf("prod")), HaveField("Verbs", ConsistOf("get")))),
			"the node daemon reads its own StorageCluster at start, and only that one")
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: cluster.Namespace, Name: "prod-node-daemon"}, &rbacv1.RoleBinding{})).To(Succeed())

		By("leaving what it applied alone once it is in place (no write loop)")
		rv := getDaemonSet(ctx)(Default).ResourceVersion
		Consistently(func(g Gomega) string { return getDaemonSet(ctx)(g).ResourceVersion }, "2s").Should(Equal(rv))
	})

	It("updates the DaemonSet when the spec changes, and keeps file-backed devices privileged for the CSI node plugin", func(ctx context.Context) {
		Eventually(getDaemonSet(ctx)).Should(Not(BeNil()))
		specHashOf := func(g Gomega) string {
			return getDaemonSet(ctx)(g).Spec.Template.Annotations[specHashAnnotation]
		}
		before := specHashOf(Default)
		Expect(before).To(HaveLen(16))
		updateCluster(ctx, func(c *v1alpha1.StorageCluster) {
			c.Spec.NodeDaemon.Image = "registry.example/cobalt/node-daemon:v0.2.0"
			c.Spec.Engine.CacheType = v1alpha1.CacheTypeLRU
		})
		Eventually(func(g Gomega) {
			ctr := getDaemonSet(ctx)(g).Spec.Template.Spec.Containers[0]
			g.Expect(ctr.Image).To(Equal("registry.example/cobalt/node-daemon:v0.2.0"))
			g.Expect(specHashOf(g)).NotTo(Equal(before), "the daemons read the engine settings at start: the pod template must change")
		}).Should(Succeed())

		lru := specHashOf(Default)
		updateCluster(ctx, func(c *v1alpha1.StorageCluster) {
			c.Spec.Devices = v1alpha1.DeviceSelection{File: &v1alpha1.FileDevice{Size: resource.MustParse("2Gi")}}
		})
		Eventually(func(g Gomega) {
			ds := getDaemonSet(ctx)(g)
			ctr := ds.Spec.Template.Spec.Containers[0]
			g.Expect(specHashOf(g)).NotTo(BeElementOf(before, lru))
			// A file needs no privilege, but the node plugin attaches loop devices and mounts
			// them for Pods (without the plugin it runs unprivileged: TestDesiredDaemonSetServesTheCSINodePlugin).
			g.Expect(ctr.SecurityContext.Privileged).To(Equal(ptr.To(true)))
			g.Expect(ds.Spec.Template.Spec.Volumes).To(ContainElements(HaveField("Name", "dev"), HaveField("Name", kubeletDirVolume)))
		}).Should(Succeed())
	})

	It("rolls the node daemons when spec.devices.allowWipe is set and again when it is cleared", func(ctx context.Context) {
		specHashOf := func(g Gomega) string {
			return getDaemonSet(ctx)(g).Spec.Template.Annotations[specHashAnnotation]
		}
		Eventually(specHashOf).Should(HaveLen(16))
		without := specHashOf(Default)

		updateCluster(ctx, func(c *v1alpha1.StorageCluster) { c.Spec.Devices.AllowWipe = true })
		Eventually(specHashOf).ShouldNot(Equal(without))

		updateCluster(ctx, func(c *v1alpha1.StorageCluster) { c.Spec.Devices.AllowWipe = false })
		Eventually(specHashOf).Should(Equal(without))
	})

	It("rolls the node daemons when the node API's CA changes, and copies the new CA", func(ctx context.Context) {
		setCACert := func(ctx context.Context, cert string) {
			Eventually(func() error {
				sec := &corev1.Secret{}
				if err := k8sClient.Get(ctx, testCASecret, sec); err != nil {
					return err
				}
				sec.Data["ca.crt"] = []byte(cert)
				return k8sClient.Update(ctx, sec)
			}).Should(Succeed())
		}
		caAnnotation := func(g Gomega) string {
			return getDaemonSet(ctx)(g).Spec.Template.Annotations[caHashAnnotation]
		}
		Eventually(caAnnotation).Should(Equal(caHash([]byte("test CA certificate"))))

		// A new operator made a new CA (its old Secret was deleted with its ServiceAccount); it
		// reconciles every StorageCluster when it starts, which the spec change stands in for.
		setCACert(ctx, "a new test CA certificate")
		DeferCleanup(func(ctx context.Context) { setCACert(ctx, "test CA certificate") })
		updateCluster(ctx, func(c *v1alpha1.StorageCluster) { c.Spec.Engine.CacheType = v1alpha1.CacheTypeLRU })
		Eventually(caAnnotation).Should(Equal(caHash([]byte("a new test CA certificate"))))
		Eventually(func(g Gomega) []byte {
			sec := &corev1.Secret{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: cluster.Namespace, Name: CASecretName}, sec)).To(Succeed())
			return sec.Data["ca.crt"]
		}).Should(Equal([]byte("a new test CA certificate")))
	})

	It("puts a changed DaemonSet back", func(ctx context.Context) {
		Eventually(getDaemonSet(ctx)).Should(Not(BeNil()))
		Eventually(func() error {
			ds := getDaemonSet(ctx)(Default)
			ds.Spec.Template.Spec.Containers[0].Image = "someone/else:latest"
			return k8sClient.Update(ctx, ds)
		}).Should(Succeed())
		Eventually(func(g Gomega) string {
			return getDaemonSet(ctx)(g).Spec.Template.Spec.Containers[0].Image
		}).Should(Equal(testNodeDaemonImage))
	})

	It("aggregates its Stores into its status", func(ctx context.Context) {
		a := createReadyStore(ctx, cluster, uniqueName("store"), "node-a", "100Gi", "40Gi", nil)
		b := createReadyStore(ctx, cluster, uniqueName("store"), "node-b", "100Gi", "10Gi", nil)
		DeferCleanup(func(ctx context.Context) { deleteAndWait(ctx, a); deleteAndWait(ctx, b) })

		Eventually(getCluster(ctx)).Should(And(
			HaveField("Status.StoresDesired", int32(2)),
			HaveField("Status.StoresUp", int32(2)),
			HaveField("Status.Capacity.Total", equalQuantity("200Gi")),
			HaveField("Status.Capacity.Used", equalQuantity("50Gi")),
			HaveField("Status.Capacity.Available", equalQuantity("150Gi")),
			HaveField("Status.ObservedGeneration", Not(BeZero())),
		))
		Eventually(func(g Gomega) metav1.Condition {
			return condition(getCluster(ctx)(g).Status.Conditions, v1alpha1.ConditionReady)
		}).Should(And(HaveField("Status", metav1.ConditionTrue), HaveField("Reason", v1alpha1.ReasonAllStoresUp)))

		By("letting store b's heartbeat go stale while a keeps beating")
		testClock.Step(testHeartbeatTimeout + 1e9)
		heartbeat(ctx, a.Name, "100Gi", "40Gi")
		pokeStore(ctx, b.Name) // what b's stale timer does in real time
		Eventually(getCluster(ctx)).Should(And(
			HaveField("Status.StoresDesired", int32(2)),
			HaveField("Status.StoresUp", int32(1)),
			HaveField("Status.Capacity.Total", equalQuantity("100Gi")),
		))
		Eventually(func(g Gomega) []metav1.Condition { return getCluster(ctx)(g).Status.Conditions }).Should(ContainElements(
			And(HaveField("Type", v1alpha1.ConditionReady), HaveField("Status", metav1.ConditionFalse),
				HaveField("Reason", v1alpha1.ReasonStoresDown), HaveField("Message", ContainSubstring(b.Name))),
			And(HaveField("Type", v1alpha1.ConditionDegraded), HaveField("Status", metav1.ConditionTrue)),
		))

		By("draining store b: it no longer counts as desired")
		Eventually(func() error {
			s := &v1alpha1.Store{}
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(b), s); err != nil {
				return err
			}
			s.Spec.AdminState = v1alpha1.AdminStateOut
			return k8sClient.Update(ctx, s)
		}).Should(Succeed())
		Eventually(getCluster(ctx)).Should(And(HaveField("Status.StoresDesired", int32(1)), HaveField("Status.StoresUp", int32(1))))
	})

	It("blocks its deletion while Volumes are placed on its Stores, then completes it", func(ctx context.Context) {
		store := createReadyStore(ctx, cluster, uniqueName("store"), "node-a", "100Gi", "0", nil)
		vol := newVolume(cluster.Namespace, "db", "10Gi")
		vol.Spec.StoreName = store.Name
		Expect(k8sClient.Create(ctx, vol)).To(Succeed())
		Eventually(func(g Gomega) {
			v := &v1alpha1.Volume{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(vol), v)).To(Succeed())
			g.Expect(meta.IsStatusConditionTrue(v.Status.Conditions, v1alpha1.ConditionReady)).To(BeTrue())
		}).Should(Succeed())
		// The Volume's controller may place it before this cluster's first reconcile under load:
		// delete only once the cluster is protected, as it is long before users delete it.
		Eventually(getCluster(ctx)).Should(HaveField("ObjectMeta.Finalizers", ContainElement(StorageClusterFinalizer)))

		Expect(k8sClient.Delete(ctx, cluster)).To(Succeed())
		Eventually(func(g Gomega) metav1.Condition {
			return condition(getCluster(ctx)(g).Status.Conditions, v1alpha1.ConditionReady)
		}).Should(And(HaveField("Status", metav1.ConditionFalse), HaveField("Reason", v1alpha1.ReasonDeletionBlocked),
			HaveField("Message", ContainSubstring(cluster.Namespace+"/db"))))
		Consistently(getCluster(ctx), "2s").Should(Not(BeNil()), "the cluster must wait for its volume")
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(store), &v1alpha1.Store{})).To(Succeed(), "its stores stay")

		By("a node daemon pod still running")
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: cluster.Namespace, Name: uniqueName("node-daemon"), Labels: nodeDaemonLabels(cluster)},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "node-daemon", Image: "cobalt/node-daemon:test"}}},
		}
		Expect(k8sClient.Create(ctx, pod)).To(Succeed())

		By("deleting the volume: the DaemonSet goes, and the Stores wait for its pods to stop")
		deleteAndWait(ctx, vol)
		_, held := nodes.Allocated(store.Name, vol)
		Expect(held).To(BeFalse(), "the node freed the volume before it went")
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKey{Namespace: cluster.Namespace, Name: nodeDaemonName(cluster)}, &appsv1.DaemonSet{}))
		}).Should(BeTrue(), "the node daemons are stopped first")
		Eventually(func(g Gomega) metav1.Condition {
			return condition(getCluster(ctx)(g).Status.Conditions, v1alpha1.ConditionProgressing)
		}).Should(HaveField("Message", ContainSubstring("stopping the node daemons: 1 pod(s) left")))
		Consistently(func() error {
			return k8sClient.Get(ctx, client.ObjectKeyFromObject(store), &v1alpha1.Store{})
		}, "3s").Should(Succeed(), "a running daemon would recreate a deleted Store: Stores stay until its pods are gone")
		Expect(k8sClient.Delete(ctx, pod)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(cluster), &v1alpha1.StorageCluster{}))
		}).Should(BeTrue())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(store), &v1alpha1.Store{}))
		}).Should(BeTrue(), "the cluster's stores are deleted with it")
		roleName := "cobalt-node-daemon-" + cluster.Namespace + "-prod"
		Expect(apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKey{Name: roleName}, &rbacv1.ClusterRole{}))).To(BeTrue())
		Expect(apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKey{Name: roleName}, &rbacv1.ClusterRoleBinding{}))).To(BeTrue())
		Expect(apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKey{Namespace: cluster.Namespace, Name: CASecretName}, &corev1.Secret{}))).
			To(BeTrue(), "the last cluster of the namespace takes the CA copy with it")
	})
})
