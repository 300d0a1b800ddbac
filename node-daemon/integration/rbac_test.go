package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/controllers"
	"github.com/cobaltstore/cobalt/node-daemon/app"
)

// TestDaemonRunsWithTheRBACTheOperatorGivesIt: the operator's StorageCluster reconciler makes
// the node daemon's ServiceAccount, Role and ClusterRole; a daemon that talks to the API server
// as that ServiceAccount reads its StorageCluster, prepares its device and serves its Store. The
// ServiceAccount may read its own StorageCluster only, and a daemon without those rights stops
// with an error that says so.
func TestDaemonRunsWithTheRBACTheOperatorGivesIt(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	dev := newDevice(t, 128<<20, 0, nil)
	cfg := c.daemonConfig(t, "node-r", dev)
	c.startClusterOperator(t)

	sa := "test-node-daemon" // controllers: <cluster>-node-daemon
	gomega.NewWithT(t).Eventually(func() error {
		if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: c.namespace, Name: sa}, &rbacv1.RoleBinding{}); err != nil {
			return err
		}
		return k8sClient.Get(ctx, types.NamespacedName{Name: "cobalt-node-daemon-" + c.namespace + "-test"}, &rbacv1.ClusterRoleBinding{})
	}, 30*time.Second, 100*time.Millisecond).Should(gomega.Succeed())
	asSA := impersonate(c.namespace, sa)

	// Only its own StorageCluster: another one in the namespace is forbidden.
	other := &storagev1alpha1.StorageCluster{ObjectMeta: metav1.ObjectMeta{Namespace: c.namespace, Name: "other"},
		Spec: storagev1alpha1.StorageClusterSpec{Devices: storagev1alpha1.DeviceSelection{NameFilter: "^nothing$"}}}
	if err := k8sClient.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	saClient, err := client.New(asSA, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	if err := saClient.Get(ctx, client.ObjectKeyFromObject(other), &storagev1alpha1.StorageCluster{}); !apierrors.IsForbidden(err) {
		t.Fatalf("the daemon's ServiceAccount reading another StorageCluster: %v, want Forbidden", err)
	}
	if err := saClient.List(ctx, &storagev1alpha1.StorageClusterList{}, client.InNamespace(c.namespace)); !apierrors.IsForbidden(err) {
		t.Fatalf("the daemon's ServiceAccount listing StorageClusters: %v, want Forbidden", err)
	}

	// A ServiceAccount without the operator's RBAC cannot start a daemon.
	_, err = app.NewManager(ctx, impersonate(c.namespace, "nobody"), cfg,
		func(app.EngineConfig) app.Engine { t.Fatal("an engine was made"); return nil }, testr.New(t))
	if err == nil || !strings.Contains(err.Error(), "not allowed to read StorageCluster "+c.namespace+"/test") {
		t.Fatalf("NewManager without RBAC: %v, want an error saying it may not read the StorageCluster", err)
	}

	startInProcessAs(t, asSA, cfg)
	servingStore(t, "node-r", dev, "")
}

// impersonate is the envtest admin's config acting as ServiceAccount ns/name.
func impersonate(ns, name string) *rest.Config {
	cfg := rest.CopyConfig(restConfig)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + ns + ":" + name,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
	}
	return cfg
}

// startClusterOperator runs the operator's StorageCluster reconciler, which makes the node
// daemon's DaemonSet, ServiceAccount and RBAC (the cluster's CA Secret is the operator's own).
func (c *cluster) startClusterOperator(t *testing.T) {
	t.Helper()
	runOperator(t, func(mgr ctrl.Manager) error {
		return (&controllers.StorageClusterReconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("storagecluster"),
			Clock: clock.RealClock{}, HeartbeatTimeout: 30 * time.Second, NodeDaemonImage: "cobalt/node-daemon:test",
			CASecret: types.NamespacedName{Namespace: c.namespace, Name: controllers.CASecretName}, APIReader: mgr.GetAPIReader(),
		}).SetupWithManager(mgr)
	})
}
