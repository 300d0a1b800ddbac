package app

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/node-daemon/pki"
)

// TestHeartbeatPublishesTheEndpointAsSoonAsTheServerServes: the daemon reports its Stores once the
// devices are prepared, before its gRPC server serves (here it waits for the CA Secret), and
// without an endpoint; the moment the server serves, the endpoint is published, not at the next
// heartbeat tick (an hour here). The operator keeps a Store without it not Ready.
func TestHeartbeatPublishesTheEndpointAsSoonAsTheServerServes(t *testing.T) {
	ctx := context.Background()
	ns := "cobalt-" + strings.ToLower(uuid.NewString()[:8])
	if err := k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	tc := &testCluster{namespace: ns}
	dev := sparseFile(t, t.TempDir(), "dev.img", 64<<20, 0, nil)
	cfg := tc.config(t, "node-ep", t.TempDir(), dev)
	cfg.HeartbeatInterval = time.Hour
	startDaemon(t, cfg, newMemEngine())

	name := storeName("node-ep", dev)
	gomega.NewWithT(t).Eventually(func() error {
		st, err := getStore(name)
		if err != nil {
			return err
		}
		if st.Status.UUID == "" || st.Status.LastHeartbeat == nil {
			return errors.New("store not reported yet")
		}
		return nil
	}, 20*time.Second, 50*time.Millisecond).Should(gomega.Succeed())
	st, err := getStore(name)
	if err != nil {
		t.Fatal(err)
	}
	if ep, ok := st.Annotations[storagev1alpha1.AnnotationNodeEndpoint]; ok {
		t.Fatalf("the Store advertises endpoint %q while the daemon cannot serve (no CA Secret yet)", ep)
	}

	// The operator creates the CA; the daemon issues its certificate, serves, and publishes.
	if _, err := pki.EnsureCASecret(ctx, k8sClient, types.NamespacedName{Namespace: ns, Name: cfg.CASecret}, time.Now()); err != nil {
		t.Fatalf("EnsureCASecret: %v", err)
	}
	gomega.NewWithT(t).Eventually(func() error {
		s, err := getStore(name)
		if err != nil {
			return err
		}
		if s.Annotations[storagev1alpha1.AnnotationNodeEndpoint] == "" {
			return errors.New("no endpoint published")
		}
		return nil
	}, 15*time.Second, 50*time.Millisecond).Should(gomega.Succeed())
}

// TestStoppingDaemonWithdrawsItsEndpoint: when the daemon stops (SIGTERM), its Stores lose the
// endpoint annotation, so the operator stops sending calls there before the heartbeat goes stale;
// the next daemon publishes its own.
func TestStoppingDaemonWithdrawsItsEndpoint(t *testing.T) {
	tc := newTestCluster(t)
	dev := sparseFile(t, t.TempDir(), "dev.img", 64<<20, 0, nil)
	cfg := tc.config(t, "node-stop", t.TempDir(), dev)
	eng := newMemEngine()
	d := startDaemon(t, cfg, eng)
	st := readyStore(t, "node-stop", dev)

	d.stop(t)
	after, err := getStore(st.Name)
	if err != nil {
		t.Fatal(err)
	}
	if ep, ok := after.Annotations[storagev1alpha1.AnnotationNodeEndpoint]; ok {
		t.Fatalf("the stopped daemon left its endpoint %q on Store %s", ep, st.Name)
	}

	startDaemon(t, cfg, eng)
	readyStore(t, "node-stop", dev)
}
