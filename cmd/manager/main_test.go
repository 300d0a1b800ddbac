package main

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/node-daemon/pki"
)

func TestParseNamespacedName(t *testing.T) {
	for _, bad := range []string{"", "x", "/x", "x/", "a/b/c"} {
		if _, err := parseNamespacedName(bad); err == nil {
			t.Errorf("parseNamespacedName(%q) accepted", bad)
		}
	}
	if got, err := parseNamespacedName("ns/name"); err != nil || got.Namespace != "ns" || got.Name != "name" {
		t.Errorf("parseNamespacedName(ns/name) = %v, %v", got, err)
	}
}

func TestBindFlagsDefaultsFromTheEnvironment(t *testing.T) {
	tests := []struct {
		name               string
		podNamespace       string
		args               []string
		leaderNS, caSecret string
	}{
		{"in cluster: the pod's namespace", "ops", nil, "ops", "ops/cobalt-ca"},
		{"out of cluster: the install's namespace", "", nil, "cobalt-system", "cobalt-system/cobalt-ca"},
		{"flags override the environment", "ops", []string{"--leader-election-namespace=elect", "--ca-secret=pki/ca"}, "elect", "pki/ca"},
		{"out of cluster with a flag", "", []string{"--leader-election-namespace=dev"}, "dev", "cobalt-system/cobalt-ca"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("manager", flag.ContinueOnError)
			opts := bindFlags(fs, func(k string) string {
				if k == "POD_NAMESPACE" {
					return tt.podNamespace
				}
				return ""
			})
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if opts.leaderElectionNamespace != tt.leaderNS || opts.caSecret != tt.caSecret {
				t.Fatalf("leader election namespace %q, CA secret %q; want %q, %q", opts.leaderElectionNamespace, opts.caSecret, tt.leaderNS, tt.caSecret)
			}
		})
	}
}

func TestRunRefusesLeaderElectionWithoutANamespace(t *testing.T) {
	err := run(t.Context(), nil, options{heartbeatTimeout: time.Minute, caSecret: "a/b", leaderElect: true})
	if err == nil || !strings.Contains(err.Error(), "--leader-election-namespace") {
		t.Fatalf("run = %v, want an error naming --leader-election-namespace", err)
	}
}

// TestManagerRunsAgainstAnAPIServer starts the real manager (run) on an envtest API server and
// checks its wiring end to end: it elects itself leader from outside the cluster (the Lease in
// --leader-election-namespace), creates the node API's CA, reconciles a StorageCluster into a
// node daemon DaemonSet with a copy of the CA in the cluster's namespace, and stops cleanly.
func TestManagerRunsAgainstAnAPIServer(t *testing.T) {
	g := NewWithT(t)
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run `make test`, which builds kube-apiserver and etcd into bin/k8s/<version> and sets it")
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	cfg, err := env.Start()
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { g.Expect(env.Stop()).To(Succeed()) })

	scheme := runtime.NewScheme()
	g.Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	g.Expect(storagev1alpha1.AddToScheme(scheme)).To(Succeed())
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	g.Expect(err).NotTo(HaveOccurred())

	ctx := t.Context()
	for _, ns := range []string{"cobalt-system", "storage"} {
		g.Expect(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	}

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- run(runCtx, cfg, options{metricsAddr: "0", probeAddr: "0", nodeDaemonImage: "cobalt/node-daemon:test",
			heartbeatTimeout: time.Minute, caSecret: "cobalt-system/cobalt-ca",
			leaderElect: true, leaderElectionNamespace: "cobalt-system"})
	}()

	var lease coordinationv1.Lease
	g.Eventually(func() error {
		return c.Get(ctx, client.ObjectKey{Namespace: "cobalt-system", Name: leaderElectionID}, &lease)
	}, 20*time.Second).Should(Succeed(), "the manager holds the leader election Lease in cobalt-system")
	g.Expect(lease.Spec.HolderIdentity).NotTo(BeNil())
	g.Expect(*lease.Spec.HolderIdentity).NotTo(BeEmpty())

	caKey := client.ObjectKey{Namespace: "cobalt-system", Name: "cobalt-ca"}
	var caSecret corev1.Secret
	g.Eventually(func() error { return c.Get(ctx, caKey, &caSecret) }, 20*time.Second).Should(Succeed())
	_, err = pki.ParseCA(caSecret.Data[pki.SecretCertKey], caSecret.Data[pki.SecretKeyKey])
	g.Expect(err).NotTo(HaveOccurred(), "the manager created a usable CA")

	sc := &storagev1alpha1.StorageCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: "storage", Name: "dev"},
		Spec: storagev1alpha1.StorageClusterSpec{Devices: storagev1alpha1.DeviceSelection{
			File: &storagev1alpha1.FileDevice{Size: resource.MustParse("1Gi")}}},
	}
	g.Expect(c.Create(ctx, sc)).To(Succeed())
	g.Eventually(func() error {
		return c.Get(ctx, client.ObjectKey{Namespace: "storage", Name: "dev-node-daemon"}, &appsv1.DaemonSet{})
	}, 20*time.Second).Should(Succeed())
	var copied corev1.Secret
	g.Eventually(func() error {
		return c.Get(ctx, client.ObjectKey{Namespace: "storage", Name: "cobalt-ca"}, &copied)
	}, 20*time.Second).Should(Succeed())
	g.Expect(copied.Data).To(Equal(caSecret.Data), "the cluster's namespace holds the operator's CA")

	stop()
	g.Eventually(done, 20*time.Second).Should(Receive(BeNil()), "the manager stops cleanly when its context ends")
}
