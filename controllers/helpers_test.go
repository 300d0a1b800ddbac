package controllers

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/types"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// nameSeq makes object names unique across specs (one API server serves the whole suite).
var nameSeq atomic.Int64

func uniqueName(prefix string) string { return fmt.Sprintf("%s-%d", prefix, nameSeq.Add(1)) }

// createNamespace makes a fresh namespace for one spec.
func createNamespace(ctx context.Context) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: uniqueName("t")}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

func newFileCluster(ns, name string) *v1alpha1.StorageCluster {
	return &v1alpha1.StorageCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.StorageClusterSpec{
			Devices: v1alpha1.DeviceSelection{File: &v1alpha1.FileDevice{Size: resource.MustParse("1Gi")}},
		},
	}
}

func newStore(name string, cluster *v1alpha1.StorageCluster, node string) *v1alpha1.Store {
	return &v1alpha1.Store{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			v1alpha1.LabelClusterName: cluster.Name, v1alpha1.LabelClusterNamespace: cluster.Namespace,
			v1alpha1.LabelNodeName: node, v1alpha1.LabelDeviceClass: string(v1alpha1.DeviceClassSSD),
		}},
		Spec: v1alpha1.StoreSpec{
			Cluster:     v1alpha1.ClusterReference{Namespace: cluster.Namespace, Name: cluster.Name},
			NodeName:    node,
			DevicePath:  "/dev/nvme0n1",
			DeviceClass: v1alpha1.DeviceClassSSD,
		},
	}
}

func newVolume(ns, name, size string) *v1alpha1.Volume {
	return &v1alpha1.Volume{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1alpha1.VolumeSpec{Size: resource.MustParse(size)},
	}
}

// heartbeat writes what a serving node daemon reports for a Store: its endpoint annotation, then
// a heartbeat at the fake clock's now with the given capacity and use.
func heartbeat(ctx context.Context, name, capacity, used string) {
	publishEndpoint(ctx, name)
	reportStore(ctx, name, capacity, used)
}

// publishEndpoint sets the Store's node-endpoint annotation, as the node daemon does once its
// gRPC server serves.
func publishEndpoint(ctx context.Context, name string) {
	Eventually(func() error {
		s := &v1alpha1.Store{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Name: name}, s); err != nil {
			return err
		}
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[v1alpha1.AnnotationNodeEndpoint] = "10.0.0.7:7443"
		return k8sClient.Update(ctx, s)
	}).Should(Succeed())
}

// reportStore writes only the status a node daemon reports (a heartbeat at the fake clock's now
// with the given capacity and use), as it does before its API serves.
func reportStore(ctx context.Context, name, capacity, used string) {
	reportStoreAt(ctx, name, capacity, used, testClock.Now())
}

// reportStoreAt is reportStore with a heartbeat at time at.
func reportStoreAt(ctx context.Context, name, capacity, used string, at time.Time) {
	Eventually(func() error {
		s := &v1alpha1.Store{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Name: name}, s); err != nil {
			return err
		}
		c, u := resource.MustParse(capacity), resource.MustParse(used)
		s.Status.Capacity, s.Status.Used = &c, &u
		s.Status.LastHeartbeat = &metav1.Time{Time: at}
		s.Status.UUID = "uuid-" + name
		return k8sClient.Status().Update(ctx, s)
	}).Should(Succeed())
}

// createReadyStore creates a Store of cluster on node and reports it alive with the given
// capacity and use, then waits for the Store reconciler to call it Ready.
func createReadyStore(ctx context.Context, cluster *v1alpha1.StorageCluster, name, node, capacity, used string, labels map[string]string) *v1alpha1.Store {
	s := newStore(name, cluster, node)
	for k, v := range labels {
		s.Labels[k] = v
	}
	Expect(k8sClient.Create(ctx, s)).To(Succeed())
	heartbeat(ctx, name, capacity, used)
	Eventually(func(g Gomega) {
		g.Expect(k8sClient.Get(ctx, client.ObjectKey{Name: name}, s)).To(Succeed())
		g.Expect(meta.IsStatusConditionTrue(s.Status.Conditions, v1alpha1.ConditionReady)).To(BeTrue())
	}).Should(Succeed())
	return s
}

// createNode registers a Node object with labels (envtest runs no kubelet).
func createNode(ctx context.Context, name string, labels map[string]string) {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	Expect(k8sClient.Create(ctx, n)).To(Succeed())
}

// equalQuantity matches a resource.Quantity equal in value to s.
func equalQuantity(s string) types.GomegaMatcher {
	want := resource.MustParse(s)
	return WithTransform(func(q resource.Quantity) bool { return q.Cmp(want) == 0 }, BeTrue())
}

// condition returns the condition of type t, or an empty one.
func condition(conds []metav1.Condition, t string) metav1.Condition {
	if c := meta.FindStatusCondition(conds, t); c != nil {
		return *c
	}
	return metav1.Condition{}
}

// deleteAndWait deletes obj and waits until the API server no longer has it.
func deleteAndWait(ctx context.Context, obj client.Object) {
	Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, obj))).To(Succeed())
	Eventually(func() bool {
		return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj))
	}).Should(BeTrue(), "%T %s still exists", obj, client.ObjectKeyFromObject(obj))
}

// deleteVolumesAndStores deletes every Volume of namespace ns (waiting for each to go), then
// every Store: a spec's cleanup, so the next spec's placement sees only its own Stores.
func deleteVolumesAndStores(ctx context.Context, ns string) {
	var vols v1alpha1.VolumeList
	Expect(k8sClient.List(ctx, &vols, client.InNamespace(ns))).To(Succeed())
	for i := range vols.Items {
		deleteAndWait(ctx, &vols.Items[i])
	}
	deleteAllStores(ctx)
}

// deleteAllStores removes every Store so each placement spec sees only its own.
func deleteAllStores(ctx context.Context) {
	var list v1alpha1.StoreList
	Expect(k8sClient.List(ctx, &list)).To(Succeed())
	for i := range list.Items {
		deleteAndWait(ctx, &list.Items[i])
	}
}

// pokeStore changes an annotation of a Store so that it is reconciled now; the fake clock does
// not wake reconcilers up the way passing time does.
func pokeStore(ctx context.Context, name string) {
	Eventually(func() error {
		s := &v1alpha1.Store{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Name: name}, s); err != nil {
			return err
		}
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations["test/poke"] = uniqueName("p")
		return k8sClient.Update(ctx, s)
	}).Should(Succeed())
}
