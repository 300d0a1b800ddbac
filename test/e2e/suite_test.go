//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
)

// suite holds what every step shares. Steps run in order (an Ordered container): each builds on
// the state the previous one left.
type suite struct {
	env    suiteEnv
	cfg    *rest.Config
	c      client.Client
	kube   kubernetes.Interface
	helm   *helmRelease
	cli    cobaltCLI
	work   string // scratch files (data written and read back)
	usable loopDevice
	ext4   loopDevice
	// ext4Head is the SHA-256 of the ext4 device's first MiB before Cobalt saw it.
	ext4Head string
	// replA and replB are two more devices for the replication step's copies (not in the
	// StorageCluster before it); replAMeta is replA's separate metadata device there.
	replA, replB, replAMeta loopDevice
}

var s suite

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Cobalt e2e")
}

var _ = BeforeSuite(func(ctx SpecContext) {
	var err error
	s.env, err = loadEnv()
	Expect(err).NotTo(HaveOccurred())
	s.cfg, err = clientcmd.BuildConfigFromFlags("", s.env.kubeconfig)
	Expect(err).NotTo(HaveOccurred(), "admin kubeconfig")
	scheme := runtime.NewScheme()
	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(storagev1alpha1.AddToScheme(scheme)).To(Succeed())
	Expect(apiextensionsv1.AddToScheme(scheme)).To(Succeed())
	s.c, err = client.New(s.cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	s.kube, err = kubernetes.NewForConfig(s.cfg)
	Expect(err).NotTo(HaveOccurred())
	s.helm, err = newHelmRelease(s.env.kubeconfig, s.env.chartDir, releaseNamespace, releaseName,
		func(format string, args ...any) { GinkgoWriter.Printf("helm: "+format+"\n", args...) })
	Expect(err).NotTo(HaveOccurred())
	s.cli = cobaltCLI{bin: s.env.cli, kubeconfig: s.env.kubeconfig, namespace: releaseNamespace, caSecret: releaseNamespace + "/cobalt-ca"}
	s.work = filepath.Join(s.env.dir, "work")
	Expect(os.MkdirAll(s.work, 0o755)).To(Succeed())

	// Two devices: one for a Store, and one with an ext4 filesystem that Cobalt must not touch.
	devDir := filepath.Join(s.env.dir, "devices")
	s.usable, err = attachLoop(ctx, devDir, "store", usableSize)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx SpecContext) { Expect(s.usable.detach(ctx)).To(Succeed()) })
	s.ext4, err = attachLoop(ctx, devDir, "ext4", ext4Size)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx SpecContext) { Expect(s.ext4.detach(ctx)).To(Succeed()) })
	s.replA, err = attachLoop(ctx, devDir, "replica-a", replicaDevSize)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx SpecContext) { Expect(s.replA.detach(ctx)).To(Succeed()) })
	s.replB, err = attachLoop(ctx, devDir, "replica-b", replicaDevSize)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx SpecContext) { Expect(s.replB.detach(ctx)).To(Succeed()) })
	s.replAMeta, err = attachLoop(ctx, devDir, "replica-a-meta", metadataDevSize)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx SpecContext) { Expect(s.replAMeta.detach(ctx)).To(Succeed()) })
	_, err = run(ctx, "mkfs.ext4", "-q", "-F", "-L", "not-cobalt", s.ext4.path)
	Expect(err).NotTo(HaveOccurred())
	s.ext4Head, err = headSum(ctx, s.ext4.path)
	Expect(err).NotTo(HaveOccurred())
	GinkgoWriter.Printf("devices: %s (store, %d MiB), %s (ext4, %d MiB, first MiB sha256 %s)\n",
		s.usable.path, usableSize>>20, s.ext4.path, ext4Size>>20, s.ext4Head)

	v, err := s.kube.Discovery().ServerVersion()
	Expect(err).NotTo(HaveOccurred())
	GinkgoWriter.Printf("cluster: Kubernetes %s\n", v.GitVersion)
}, NodeTimeout(2*time.Minute))

// Whatever happened, leave no Cobalt release, StorageCluster or Volume behind: VolumeSnapshots
// and Snapshots first (a snapshot keeps its Volume's data), then Volumes (the StorageCluster's
// finalizer waits for them), then the cluster, then the release. Teardown (hack/cluster/down.sh)
// removes the rest of the cluster.
var _ = AfterSuite(func(ctx SpecContext) {
	if s.c == nil {
		return
	}
	vsl := newList(volumeSnapshotGVK)
	if err := s.c.List(ctx, vsl); err == nil {
		for i := range vsl.Items {
			_ = client.IgnoreNotFound(s.c.Delete(ctx, &vsl.Items[i]))
		}
	}
	var snaps storagev1alpha1.SnapshotList
	if err := s.c.List(ctx, &snaps); err == nil {
		for i := range snaps.Items {
			_ = client.IgnoreNotFound(s.c.Delete(ctx, &snaps.Items[i]))
		}
	}
	var vols storagev1alpha1.VolumeList
	if err := s.c.List(ctx, &vols); err == nil {
		for i := range vols.Items {
			_ = client.IgnoreNotFound(s.c.Delete(ctx, &vols.Items[i]))
		}
	}
	var clusters storagev1alpha1.StorageClusterList
	if err := s.c.List(ctx, &clusters); err == nil {
		for i := range clusters.Items {
			_ = client.IgnoreNotFound(s.c.Delete(ctx, &clusters.Items[i]))
		}
	}
	if s.helm != nil && s.helm.installed() {
		if err := s.helm.uninstall(); err != nil {
			GinkgoWriter.Printf("cleanup: %v\n", err)
		}
	}
}, NodeTimeout(3*time.Minute))

// Each step's wall time, printed at the end of the run.
var _ = ReportAfterSuite("step timings", func(r Report) {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-8s %-9s %s\n", "TIME", "RESULT", "STEP")
	var total time.Duration
	for _, sr := range r.SpecReports {
		if sr.LeafNodeType != types.NodeTypeIt {
			continue
		}
		total += sr.RunTime
		fmt.Fprintf(&b, "%-8s %-9s %s\n", sr.RunTime.Round(100*time.Millisecond), sr.State, sr.LeafNodeText)
	}
	fmt.Fprintf(&b, "%-8s %-9s %s\n", r.RunTime.Round(100*time.Millisecond), "", "whole suite (with set-up and clean-up)")
	fmt.Fprint(os.Stdout, b.String())
})
