package chart

import (
	authorizationv1 "k8s.io/api/authorization/v1"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/release"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// helmConfig is what `helm --kubeconfig K -n ns` uses: a kubeconfig for an admin of the test API
// server and Secret-backed release storage.
func helmConfig(t *testing.T, ns string) *action.Configuration {
	t.Helper()
	kc, err := server.env.AdminKubeconfig("helm-test")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = &path
	flags.Namespace = &ns
	cfg := new(action.Configuration)
	if err := cfg.Init(flags, ns, "secret", t.Logf); err != nil {
		t.Fatalf("helm configuration: %v", err)
	}
	return cfg
}

// chartForTestServer loads the chart for installing into the test API server. A kube-apiserver
// built from Go modules (hack/envtest-assets.sh, when no release binary can be downloaded) reports
// version v0.0.0-master, which no kubeVersion range admits; only then is the chart's kubeVersion
// dropped here. TestKubeVersionIsEnforced checks that constraint against real version strings.
func chartForTestServer(t *testing.T) *chart.Chart {
	t.Helper()
	ch := loadChart(t)
	dc, err := discovery.NewDiscoveryClientForConfig(server.env.Config)
	if err != nil {
		t.Fatal(err)
	}
	v, err := dc.ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(v.GitVersion, "v0.0.0") {
		t.Logf("the test API server reports %s (built without version stamps): not checking kubeVersion %q here", v.GitVersion, ch.Metadata.KubeVersion)
		ch.Metadata.KubeVersion = ""
	}
	return ch
}

// TestHelmInstallUpgradeUninstall installs the chart for real into the test API server (`helm
// install --create-namespace` with every option on), upgrades it, and uninstalls it: the
// objects appear, and on uninstall they go, the CA Secret rendered from the values too, except
// the StorageCluster (resource-policy keep: deleting it is a decision about data) and the CRDs
// (Helm never deletes CRDs, so uninstalling Cobalt cannot delete anyone's data).
func TestHelmInstallUpgradeUninstall(t *testing.T) {
	const ns = "cobalt-helm"
	cfg := helmConfig(t, ns)
	install := action.NewInstall(cfg)
	install.ReleaseName = releaseName
	install.Namespace = ns
	install.CreateNamespace = true
	install.Timeout = time.Minute
	rel, err := install.RunWithContext(t.Context(), chartForTestServer(t), allOptions(t))
	if err != nil {
		t.Fatalf("helm install: %v", err)
	}
	if rel.Info.Status != release.StatusDeployed {
		t.Fatalf("release status %s, want deployed", rel.Info.Status)
	}

	c := server.client
	objects := []client.Object{
		&appsv1.Deployment{}, &corev1.ServiceAccount{}, &corev1.Service{},
	}
	names := []string{"cobalt-controller-manager", "cobalt-controller-manager", "cobalt-controller-manager-metrics-service"}
	for i, o := range objects {
		if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: names[i]}, o); err != nil {
			t.Errorf("after install: %T %s: %v", o, names[i], err)
		}
	}
	var binding rbacv1.ClusterRoleBinding
	if err := c.Get(t.Context(), client.ObjectKey{Name: "cobalt-manager-rolebinding"}, &binding); err != nil {
		t.Fatalf("after install: ClusterRoleBinding: %v", err)
	}
	if len(binding.Subjects) != 1 || binding.Subjects[0].Namespace != ns {
		t.Errorf("ClusterRoleBinding subjects %v, want the ServiceAccount in %s", binding.Subjects, ns)
	}

	expectOperatorMay(t, ns, []resourceAttributes{
		{Group: "coordination.k8s.io", Resource: "leases", Verbs: []string{"get", "create", "update"}},
		// client-go's leader election announces a new leader with a core/v1 Event; the
		// reconcilers record theirs through events.k8s.io.
		{Group: "", Resource: "events", Verbs: []string{"create", "patch"}},
		{Group: "events.k8s.io", Resource: "events", Verbs: []string{"create", "patch"}},
		// The CSI sidecars, which run as the operator's ServiceAccount.
		{Group: "", Resource: "persistentvolumes", Verbs: []string{"create", "patch", "delete"}},
		{Group: "", Resource: "persistentvolumeclaims", Verbs: []string{"watch", "update"}},
		{Group: "storage.k8s.io", Resource: "csinodes", Verbs: []string{"list", "watch"}},
		{Group: "snapshot.storage.k8s.io", Resource: "volumesnapshots", Verbs: []string{"get", "update"}},
		{Group: "snapshot.storage.k8s.io", Resource: "volumesnapshotcontents", Verbs: []string{"watch", "update", "patch"}},
		{Group: "snapshot.storage.k8s.io", Resource: "volumesnapshotclasses", Verbs: []string{"list"}},
	})
	// The snapshot-controller runs as its own ServiceAccount.
	expectMay(t, ns, "cobalt-snapshot-controller", []resourceAttributes{
		{Group: "coordination.k8s.io", Resource: "leases", Verbs: []string{"get", "update"}},
		{Group: "snapshot.storage.k8s.io", Resource: "volumesnapshotcontents", Verbs: []string{"create", "delete"}},
		{Group: "snapshot.storage.k8s.io", Resource: "volumesnapshots", Verbs: []string{"watch", "update"}},
		{Group: "", Resource: "persistentvolumeclaims", Verbs: []string{"update"}},
	})

	upgrade := action.NewUpgrade(cfg)
	upgrade.Namespace = ns
	values := allOptions(t)
	values["operator"] = map[string]any{"replicas": 2}
	if rel, err = upgrade.RunWithContext(t.Context(), releaseName, chartForTestServer(t), values); err != nil {
		t.Fatalf("helm upgrade: %v", err)
	}
	var dep appsv1.Deployment
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "cobalt-controller-manager"}, &dep); err != nil {
		t.Fatal(err)
	}
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 2 || rel.Version != 2 {
		t.Errorf("after upgrade: replicas %v, release version %d; want 2 and 2", dep.Spec.Replicas, rel.Version)
	}

	if _, err := action.NewUninstall(cfg).Run(releaseName); err != nil {
		t.Fatalf("helm uninstall: %v", err)
	}
	var role rbacv1.ClusterRole
	if err := c.Get(t.Context(), client.ObjectKey{Name: "cobalt-manager-role"}, &role); !apierrors.IsNotFound(err) {
		t.Errorf("after uninstall: ClusterRole cobalt-manager-role: %v, want NotFound", err)
	}
	var lease coordinationv1.Lease
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "snapshot-controller-leader"}, &lease); !apierrors.IsNotFound(err) {
		t.Errorf("after uninstall: the snapshot-controller's Lease: %v, want NotFound", err)
	}
	var ca corev1.Secret
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "cobalt-ca"}, &ca); !apierrors.IsNotFound(err) {
		t.Errorf("after uninstall: CA Secret %s/cobalt-ca: %v, want NotFound (the values hold the CA)", ns, err)
	}
	sc := &unstructured.Unstructured{}
	sc.SetAPIVersion("storage.cobalt.io/v1alpha1")
	sc.SetKind("StorageCluster")
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "cobalt"}, sc); err != nil {
		t.Errorf("after uninstall the StorageCluster must be kept: %v", err)
	}
	for _, crd := range wantCRDs {
		var u = find(t, mustRender(t, nil).crds, "CustomResourceDefinition", crd[len("CustomResourceDefinition/"):])
		if err := c.Get(t.Context(), client.ObjectKey{Name: u.GetName()}, u.DeepCopy()); err != nil {
			t.Errorf("after uninstall the CRD %s must be kept: %v", u.GetName(), err)
		}
	}
}

// resourceAttributes are the verbs on one resource that the operator needs in its namespace.
type resourceAttributes struct {
	Group, Resource string
	Verbs           []string
}

// expectOperatorMay asks the API server's authorizer (a SubjectAccessReview) whether the
// operator's ServiceAccount, with the RBAC the chart installed, may do each verb in ns.
func expectOperatorMay(t *testing.T, ns string, want []resourceAttributes) {
	t.Helper()
	expectMay(t, ns, "cobalt-controller-manager", want)
}

// expectMay asks the API server's authorizer whether ServiceAccount ns/sa may do each verb in ns.
func expectMay(t *testing.T, ns, sa string, want []resourceAttributes) {
	t.Helper()
	user := "system:serviceaccount:" + ns + ":" + sa
	for _, w := range want {
		for _, verb := range w.Verbs {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User:   user,
				Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
				ResourceAttributes: &authorizationv1.ResourceAttributes{
					Namespace: ns, Verb: verb, Group: w.Group, Resource: w.Resource,
				},
			}}
			if err := server.client.Create(t.Context(), sar); err != nil {
				t.Fatalf("SubjectAccessReview: %v", err)
			}
			if !sar.Status.Allowed {
				t.Errorf("the operator may not %s %s (group %q) in %s: %s", verb, w.Resource, w.Group, ns, sar.Status.Reason)
			}
		}
	}
}
