package main

import (
	"context"
	"flag"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/controllers"
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
		name                      string
		podNamespace              string
		args                      []string
		leaderNS, caSecret, owner string
	}{
		{"in cluster: the pod's namespace", "ops", nil, "ops", "ops/cobalt-ca", "ops/"},
		{"in cluster with an owner", "ops", []string{"--owner-service-account=op-sa"}, "ops", "ops/cobalt-ca", "ops/op-sa"},
		{"out of cluster: the install's namespace, no CA owner", "", nil, "cobalt-system", "cobalt-system/cobalt-ca", "cobalt-system/"},
		{"flags override the environment", "ops",
			[]string{"--leader-election-namespace=elect", "--ca-secret=pki/ca"}, "elect", "pki/ca", "ops/"},
		{"out of cluster with flags", "", []string{"--leader-election-namespace=dev", "--owner-service-account=me"}, "dev", "cobalt-system/cobalt-ca", "cobalt-system/me"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("manager", flag.ContinueOnError)
			env := map[string]string{"POD_NAMESPACE": tt.podNamespace}
			opts := bindFlags(fs, func(k string) string { return env[k] })
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if opts.leaderElectionNamespace != tt.leaderNS || opts.caSecret != tt.caSecret || opts.owner.String() != tt.owner {
				t.Fatalf("leader election namespace %q, CA secret %q, CA owner %q; want %q, %q, %q",
					opts.leaderElectionNamespace, opts.caSecret, opts.owner, tt.leaderNS, tt.caSecret, tt.owner)
			}
		})
	}
}

// TestBindFlagsCSI: the node plugin is on by default, for the usual kubelet directory; both can
// be changed.
func TestBindFlagsCSI(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		enabled    bool
		kubeletDir string
	}{
		{nil, true, "/var/lib/kubelet"},
		{[]string{"--kubelet-dir=/tmp/cobalt-e2e/shared/kubelet"}, true, "/tmp/cobalt-e2e/shared/kubelet"},
		{[]string{"--csi-node-plugin=false"}, false, "/var/lib/kubelet"},
	} {
		fs := flag.NewFlagSet("manager", flag.ContinueOnError)
		opts := bindFlags(fs, func(string) string { return "" })
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if opts.csi.Enabled != tc.enabled || opts.csi.KubeletDir != tc.kubeletDir {
			t.Errorf("%v: node plugin %v, kubelet directory %q; want %v, %q", tc.args, opts.csi.Enabled, opts.csi.KubeletDir, tc.enabled, tc.kubeletDir)
		}
	}
}

func TestRunRefusesARelativeKubeletDir(t *testing.T) {
	err := run(t.Context(), nil, options{heartbeatTimeout: time.Minute, replicaReplacementDelay: time.Minute, caSecret: "a/b",
		csi: controllers.CSINodePlugin{Enabled: true, KubeletDir: "var/lib/kubelet"}})
	if err == nil || !strings.Contains(err.Error(), "--kubelet-dir") {
		t.Fatalf("run = %v, want an error naming --kubelet-dir", err)
	}
}

func TestRunRefusesLeaderElectionWithoutANamespace(t *testing.T) {
	err := run(t.Context(), nil, options{heartbeatTimeout: time.Minute, replicaReplacementDelay: time.Minute, caSecret: "a/b", leaderElect: true})
	if err == nil || !strings.Contains(err.Error(), "--leader-election-namespace") {
		t.Fatalf("run = %v, want an error naming --leader-election-namespace", err)
	}
}

// TestManagerRunsAgainstAnAPIServer starts the real manager (run) on an envtest API server and
// checks its wiring end to end: it elects itself leader from outside the cluster (the Lease in
// --leader-election-namespace, owned by its ServiceAccount), creates the node API's CA, owned by
// that ServiceAccount too, reconciles a StorageCluster into a node daemon DaemonSet with a copy
// of the CA in the cluster's namespace, and stops cleanly.
func TestManagerRunsAgainstAnAPIServer(t *testing.T) {
	g := NewWithT(t)
	cfg, c := testConfig, testClient

	ctx := t.Context()
	// Fresh namespaces, so that -count=N runs again against the same API server.
	var opNS, storageNS string
	for _, ns := range []*string{&opNS, &storageNS} {
		obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "manager-"}}
		g.Expect(c.Create(ctx, obj)).To(Succeed())
		*ns = obj.Name
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: "cobalt-controller-manager"}}
	g.Expect(c.Create(ctx, sa)).To(Succeed())

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- run(runCtx, cfg, options{metricsAddr: "0", probeAddr: "0", nodeDaemonImage: "cobalt/node-daemon:test",
			heartbeatTimeout: time.Minute, replicaReplacementDelay: time.Minute, caSecret: opNS + "/cobalt-ca",
			leaderElect: true, leaderElectionNamespace: opNS,
			csi:   controllers.CSINodePlugin{Enabled: true, KubeletDir: "/srv/kubelet"},
			owner: types.NamespacedName{Namespace: opNS, Name: "cobalt-controller-manager"}})
	}()

	var lease coordinationv1.Lease
	g.Eventually(func(g Gomega) string {
		g.Expect(c.Get(ctx, client.ObjectKey{Namespace: opNS, Name: leaderElectionID}, &lease)).To(Succeed())
		return ptr.Deref(lease.Spec.HolderIdentity, "")
	}, 20*time.Second).ShouldNot(BeEmpty(), "the manager holds the leader election Lease in its namespace")
	g.Expect(lease.OwnerReferences).To(ConsistOf(And(HaveField("Kind", "ServiceAccount"), HaveField("UID", sa.UID))),
		"the operator's ServiceAccount owns the Lease, so uninstalling the operator deletes it")

	caKey := client.ObjectKey{Namespace: opNS, Name: "cobalt-ca"}
	var caSecret corev1.Secret
	g.Eventually(func() error { return c.Get(ctx, caKey, &caSecret) }, 20*time.Second).Should(Succeed())
	_, err := pki.ParseCA(caSecret.Data[pki.SecretCertKey], caSecret.Data[pki.SecretKeyKey])
	g.Expect(err).NotTo(HaveOccurred(), "the manager created a usable CA")
	g.Expect(caSecret.OwnerReferences).To(ConsistOf(And(HaveField("Kind", "ServiceAccount"),
		HaveField("Name", "cobalt-controller-manager"), HaveField("UID", sa.UID))),
		"the operator's ServiceAccount owns the CA, so uninstalling the operator deletes it")

	sc := &storagev1alpha1.StorageCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: storageNS, Name: "dev"},
		Spec: storagev1alpha1.StorageClusterSpec{Devices: storagev1alpha1.DeviceSelection{
			File: &storagev1alpha1.FileDevice{Size: resource.MustParse("1Gi")}}},
	}
	g.Expect(c.Create(ctx, sc)).To(Succeed())
	var ds appsv1.DaemonSet
	g.Eventually(func() error {
		return c.Get(ctx, client.ObjectKey{Namespace: storageNS, Name: "dev-node-daemon"}, &ds)
	}, 20*time.Second).Should(Succeed())
	g.Expect(ds.Spec.Template.Spec.Containers[0].Args).To(ContainElement("--csi-endpoint=unix:///srv/kubelet/plugins/csi.cobalt.io/csi.sock"),
		"the kubelet directory reaches the node daemon's CSI node plugin")
	var copied corev1.Secret
	g.Eventually(func() error {
		return c.Get(ctx, client.ObjectKey{Namespace: storageNS, Name: "cobalt-ca"}, &copied)
	}, 20*time.Second).Should(Succeed())
	g.Expect(copied.Data).To(Equal(caSecret.Data), "the cluster's namespace holds the operator's CA")

	stop()
	g.Eventually(done, 20*time.Second).Should(Receive(BeNil()), "the manager stops cleanly when its context ends")
}
