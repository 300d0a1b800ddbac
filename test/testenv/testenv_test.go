package testenv

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/test/testenv/assets"
)

func TestStartRefusesWhatIsMissing(t *testing.T) {
	for _, tc := range []struct {
		name    string
		assets  func(t *testing.T) string // KUBEBUILDER_ASSETS
		opts    Options
		wantErr []string
	}{
		{
			name:    "no binaries",
			assets:  func(t *testing.T) string { return t.TempDir() },
			wantErr: []string{"no kube-apiserver in", "make envtest"},
		},
		{
			name:    "a CRD path that does not exist",
			assets:  func(t *testing.T) string { return mustAssets(t) },
			opts:    Options{CRDPaths: []string{"config/crd/no-such-dir"}},
			wantErr: []string{"no-such-dir"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(assets.EnvVar, tc.assets(t))
			env, err := Start(tc.opts)
			if err == nil {
				_ = env.Stop()
				t.Fatalf("Start succeeded, want an error saying %q", tc.wantErr)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}

// mustAssets is the assets directory the other suites use.
func mustAssets(t *testing.T) string {
	t.Helper()
	dir, err := assets.Dir()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestEnv checks the package doc's guarantees on one running Env.
func TestEnv(t *testing.T) {
	env := Setup(t, Options{})
	ctx := t.Context()

	t.Run("Cobalt's CRDs are served and the scheme knows their kinds", func(t *testing.T) {
		for _, list := range []client.ObjectList{&v1alpha1.StorageClusterList{}, &v1alpha1.StoreList{}, &v1alpha1.VolumeList{}} {
			if err := env.Client.List(ctx, list); err != nil {
				t.Errorf("list %T: %v", list, err)
			}
		}
	})

	t.Run("the client reads the server, not a cache", func(t *testing.T) {
		g := gomega.NewWithT(t)
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "testenv-"}}
		g.Expect(env.Client.Create(ctx, ns)).To(gomega.Succeed())
		// Changed behind the client's back, through a clientset of its own.
		cs, err := kubernetes.NewForConfig(env.Config)
		g.Expect(err).NotTo(gomega.HaveOccurred())
		cm, err := cs.CoreV1().ConfigMaps(ns.Name).Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "c"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{})
		g.Expect(err).NotTo(gomega.HaveOccurred())
		var got corev1.ConfigMap
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(cm), &got)).To(gomega.Succeed())
		g.Expect(got.Data).To(gomega.HaveKeyWithValue("k", "v"))
	})

	t.Run("an admin kubeconfig works", func(t *testing.T) {
		g := gomega.NewWithT(t)
		kc, err := env.AdminKubeconfig("testenv-test")
		g.Expect(err).NotTo(gomega.HaveOccurred())
		cfg, err := clientcmd.RESTConfigFromKubeConfig(kc)
		g.Expect(err).NotTo(gomega.HaveOccurred())
		cs, err := kubernetes.NewForConfig(cfg)
		g.Expect(err).NotTo(gomega.HaveOccurred())
		_, err = cs.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{})
		g.Expect(err).NotTo(gomega.HaveOccurred())
	})

	t.Run("kubectl runs as an admin", func(t *testing.T) {
		g := gomega.NewWithT(t)
		if err := assets.CheckFor(env.AssetsDir, assets.Kubectl); err != nil {
			t.Fatalf("the assets have no kubectl, which `make envtest` builds: %v", err)
		}
		out, err := env.Kubectl(ctx, "get", "crd", "-o", "name")
		g.Expect(err).NotTo(gomega.HaveOccurred())
		g.Expect(string(out)).To(gomega.ContainSubstring("customresourcedefinition.apiextensions.k8s.io/volumes.storage.cobalt.io"))
		_, err = env.Kubectl(ctx, "get", "no-such-kind")
		g.Expect(err).To(gomega.MatchError(gomega.ContainSubstring(`doesn't have a resource type "no-such-kind"`)), "the error carries kubectl's stderr")
	})

	t.Run("StartManager returns a synced manager", func(t *testing.T) {
		g := gomega.NewWithT(t)
		mgr, err := env.NewManager(ctrl.Options{})
		g.Expect(err).NotTo(gomega.HaveOccurred())
		g.Expect(env.StartManager(mgr)).To(gomega.Succeed())
		// Its cached client serves reads.
		g.Expect(mgr.GetClient().List(ctx, &v1alpha1.StoreList{})).To(gomega.Succeed())
	})
}

// TestStopStopsManagersFirst: Stop cancels the started managers and waits for them before it
// stops the API server, and does nothing the second time.
func TestStopStopsManagersFirst(t *testing.T) {
	g := gomega.NewWithT(t)
	env, err := Start(Options{CRDPaths: []string{"config/crd/bases/storage.cobalt.io_stores.yaml"}})
	g.Expect(err).NotTo(gomega.HaveOccurred())
	// Only the CRD asked for is installed.
	g.Expect(env.Client.List(t.Context(), &v1alpha1.StoreList{})).To(gomega.Succeed())
	g.Expect(env.Client.List(t.Context(), &v1alpha1.VolumeList{})).NotTo(gomega.Succeed())

	// The runnable records whether the API server still answers while its manager stops. It
	// says when it runs: the manager starts runnables after its cache syncs, which is all that
	// StartManager waits for, so Stop must not come before that.
	running := make(chan struct{})
	atStop := make(chan error, 1)
	watcher, err := env.NewManager(ctrl.Options{})
	g.Expect(err).NotTo(gomega.HaveOccurred())
	g.Expect(watcher.Add(manager.RunnableFunc(func(ctx context.Context) error {
		close(running)
		<-ctx.Done()
		cs, err := kubernetes.NewForConfig(env.Config)
		if err == nil {
			_, err = cs.CoreV1().Namespaces().Get(context.Background(), "default", metav1.GetOptions{})
		}
		atStop <- err
		return nil
	}))).To(gomega.Succeed())
	g.Expect(env.StartManager(watcher)).To(gomega.Succeed())
	g.Eventually(running, 30*time.Second).Should(gomega.BeClosed(), "the manager never ran its runnable")

	g.Expect(env.Stop()).To(gomega.Succeed())
	var errAtStop error
	g.Expect(atStop).To(gomega.Receive(&errAtStop), "Stop returned before the manager had stopped")
	g.Expect(errAtStop).NotTo(gomega.HaveOccurred(), "the API server was stopped before the manager")
	g.Expect(env.Stop()).To(gomega.Succeed(), "a second Stop")
}
