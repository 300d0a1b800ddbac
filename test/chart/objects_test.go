package chart

import (
	"encoding/base64"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// defaultObjects is what `helm template cobalt -n cobalt-system` renders with default values,
// besides the CRDs.
var defaultObjects = []string{
	"CSIDriver/csi.cobalt.io",
	"ClusterRole/cobalt-csi-attacher-role",
	"ClusterRole/cobalt-csi-provisioner-role",
	"ClusterRole/cobalt-csi-resizer-role",
	"ClusterRole/cobalt-csi-snapshotter-role",
	"ClusterRole/cobalt-manager-role",
	"ClusterRole/cobalt-snapshot-controller-role",
	"ClusterRoleBinding/cobalt-csi-attacher-rolebinding",
	"ClusterRoleBinding/cobalt-csi-provisioner-rolebinding",
	"ClusterRoleBinding/cobalt-csi-resizer-rolebinding",
	"ClusterRoleBinding/cobalt-csi-snapshotter-rolebinding",
	"ClusterRoleBinding/cobalt-manager-rolebinding",
	"ClusterRoleBinding/cobalt-snapshot-controller-rolebinding",
	"Deployment/cobalt-system/cobalt-controller-manager",
	"Deployment/cobalt-system/cobalt-snapshot-controller",
	"Lease/cobalt-system/snapshot-controller-leader",
	"Role/cobalt-system/cobalt-csi-leader-election-role",
	"Role/cobalt-system/cobalt-leader-election-role",
	"Role/cobalt-system/cobalt-snapshot-controller-leader-election-role",
	"RoleBinding/cobalt-system/cobalt-csi-leader-election-rolebinding",
	"RoleBinding/cobalt-system/cobalt-leader-election-rolebinding",
	"RoleBinding/cobalt-system/cobalt-snapshot-controller-leader-election-rolebinding",
	"Service/cobalt-system/cobalt-controller-manager-metrics-service",
	"ServiceAccount/cobalt-system/cobalt-controller-manager",
	"ServiceAccount/cobalt-system/cobalt-snapshot-controller",
	"StorageClass/cobalt",
	"StorageClass/cobalt-xfs",
	"VolumeSnapshotClass/cobalt",
}

// optionalObjects are added by allOptions.
var optionalObjects = []string{
	"ConfigMap/cobalt-system/cobalt-grafana-dashboard",
	"PodMonitor/cobalt-system/cobalt-node-daemon-metrics-monitor",
	"Secret/cobalt-system/cobalt-ca",
	"ServiceMonitor/cobalt-system/cobalt-controller-manager-metrics-monitor",
	"StorageCluster/cobalt-system/cobalt",
}

// wantCRDs are Cobalt's CRDs and the snapshot.storage.k8s.io ones (crds/: Helm installs each only
// when the cluster has none).
var wantCRDs = []string{
	"CustomResourceDefinition/snapshots.storage.cobalt.io",
	"CustomResourceDefinition/storageclusters.storage.cobalt.io",
	"CustomResourceDefinition/stores.storage.cobalt.io",
	"CustomResourceDefinition/volumes.storage.cobalt.io",
	"CustomResourceDefinition/volumesnapshotclasses.snapshot.storage.k8s.io",
	"CustomResourceDefinition/volumesnapshotcontents.snapshot.storage.k8s.io",
	"CustomResourceDefinition/volumesnapshots.snapshot.storage.k8s.io",
}

func TestRenderedObjects(t *testing.T) {
	withOptions := append(slices.Clone(defaultObjects), optionalObjects...)
	slices.Sort(withOptions)
	for _, tc := range []struct {
		name   string
		values map[string]any
		want   []string
	}{
		{"defaults", nil, defaultObjects},
		{"all options", allOptions(t), withOptions},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mustRender(t, tc.values)
			if got := keys(r.objects); !slices.Equal(got, tc.want) {
				t.Errorf("rendered objects:\n got %v\nwant %v", got, tc.want)
			}
			if got := keys(r.crds); !slices.Equal(got, wantCRDs) {
				t.Errorf("rendered CRDs:\n got %v\nwant %v", got, wantCRDs)
			}
			for _, o := range r.objects {
				if o.GetLabels()["app.kubernetes.io/managed-by"] != "Helm" {
					t.Errorf("%s lacks the label app.kubernetes.io/managed-by=Helm", objectKey(o))
				}
			}
		})
	}
}

// TestLeaderElectionOff: without leader election the operator's Role for leases is not rendered
// and the operator is not started with --leader-elect. The CSI sidecars and the snapshot-controller
// elect their own leaders whatever the operator does (their Roles are csi-leader-election-role and
// snapshot-controller-leader-election-role).
func TestLeaderElectionOff(t *testing.T) {
	r := mustRender(t, map[string]any{"operator": map[string]any{"leaderElection": map[string]any{"enabled": false}}})
	for _, o := range r.objects {
		if strings.Contains(o.GetName(), "leader-election") && !strings.Contains(o.GetName(), "csi-leader-election") &&
			!strings.Contains(o.GetName(), "snapshot-controller-leader-election") {
			t.Errorf("leader election is off but %s is rendered", objectKey(o))
		}
	}
	if args := managerArgs(t, r); slices.Contains(args, "--leader-elect") {
		t.Errorf("leader election is off but the manager runs with %v", args)
	}
}

// TestReplicationSwitch: --enable-replication only with operator.replication.enabled (off by
// default, as in config/manager: TestChartMatchesKustomize compares the default flags).
func TestReplicationSwitch(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values map[string]any
		want   bool
	}{
		{name: "default: off"},
		{name: "off", values: map[string]any{"operator": map[string]any{"replication": map[string]any{"enabled": false}}}},
		{name: "on", values: map[string]any{"operator": map[string]any{"replication": map[string]any{"enabled": true}}}, want: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := managerArgs(t, mustRender(t, tc.values))
			if got := slices.Contains(args, "--enable-replication"); got != tc.want {
				t.Errorf("manager args %v: --enable-replication present = %v, want %v", args, got, tc.want)
			}
		})
	}
}

// TestReplicaReplacementDelay: operator.replication.replacementDelay reaches the manager as
// --replica-replacement-delay (10m by default, as in config/manager).
func TestReplicaReplacementDelay(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values map[string]any
		want   string
	}{
		{name: "default", want: "--replica-replacement-delay=10m"},
		{name: "set", values: map[string]any{"operator": map[string]any{"replication": map[string]any{"replacementDelay": "90s"}}},
			want: "--replica-replacement-delay=90s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if args := managerArgs(t, mustRender(t, tc.values)); !slices.Contains(args, tc.want) {
				t.Errorf("manager args %v lack %s", args, tc.want)
			}
		})
	}
}

// TestOperatorPodIsRestricted checks the operator's pod against the "restricted" Pod Security
// Standard, and its probes, resources and flags.
func TestOperatorPodIsRestricted(t *testing.T) {
	r := mustRender(t, nil)
	dep := find(t, r.objects, "Deployment", "cobalt-controller-manager")
	pod := nested(t, dep, "spec", "template", "spec")
	want := map[string]any{"runAsNonRoot": true, "seccompProfile": map[string]any{"type": "RuntimeDefault"}}
	psc, _ := pod["securityContext"].(map[string]any)
	for k, v := range want {
		if !equalJSON(psc[k], v) {
			t.Errorf("pod securityContext.%s = %v, want %v", k, psc[k], v)
		}
	}
	c := managerContainer(t, r)
	csc, _ := c["securityContext"].(map[string]any)
	if csc["allowPrivilegeEscalation"] != false {
		t.Errorf("container allowPrivilegeEscalation = %v, want false", csc["allowPrivilegeEscalation"])
	}
	if csc["readOnlyRootFilesystem"] != true {
		t.Errorf("container readOnlyRootFilesystem = %v, want true", csc["readOnlyRootFilesystem"])
	}
	if !equalJSON(csc["capabilities"], map[string]any{"drop": []any{"ALL"}}) {
		t.Errorf("container capabilities = %v, want drop [ALL]", csc["capabilities"])
	}
	if p, ok := csc["privileged"]; ok && p != false {
		t.Errorf("container privileged = %v", p)
	}
	for _, probe := range []struct{ field, path string }{{"livenessProbe", "/healthz"}, {"readinessProbe", "/readyz"}} {
		pr, _ := c[probe.field].(map[string]any)
		get, _ := pr["httpGet"].(map[string]any)
		if get["path"] != probe.path || get["port"] != "probes" {
			t.Errorf("%s = %v, want httpGet %s on port probes", probe.field, pr, probe.path)
		}
	}
	res, _ := c["resources"].(map[string]any)
	requests, _ := res["requests"].(map[string]any)
	limits, _ := res["limits"].(map[string]any)
	if requests["cpu"] == nil || requests["memory"] == nil || limits["memory"] == nil {
		t.Errorf("resources = %v, want cpu and memory requests and a memory limit", res)
	}
	args := managerArgs(t, r)
	for _, want := range []string{"--leader-elect", "--metrics-bind-address=:8080", "--health-probe-bind-address=:8081", "--heartbeat-timeout=60s", "--node-daemon-image=cobalt/node-daemon:0.1.0"} {
		if !slices.Contains(args, want) {
			t.Errorf("manager args %v lack %s", args, want)
		}
	}
}

// TestNoWildcardRBAC: every Role and ClusterRole the chart renders names its groups, resources and
// verbs.
func TestNoWildcardRBAC(t *testing.T) {
	r := mustRender(t, allOptions(t))
	roles := 0
	for _, o := range r.objects {
		if o.GetKind() != "Role" && o.GetKind() != "ClusterRole" {
			continue
		}
		roles++
		rules, _, _ := unstructured.NestedSlice(o.Object, "rules")
		if len(rules) == 0 {
			t.Errorf("%s has no rules", objectKey(o))
		}
		for i, rule := range rules {
			for field, vals := range rule.(map[string]any) {
				list, _ := vals.([]any)
				for _, v := range list {
					if s, _ := v.(string); strings.Contains(s, "*") {
						t.Errorf("%s rule %d: %s contains the wildcard %q", objectKey(o), i, field, s)
					}
				}
			}
		}
	}
	if roles < 8 {
		t.Fatalf("found %d roles, want the manager's, the leader election's, the four of the CSI sidecars and the two of the snapshot-controller", roles)
	}
}

// TestNotes: NOTES.txt tells what to do next, and follows the values.
func TestNotes(t *testing.T) {
	def := mustRender(t, nil).notes
	for _, want := range []string{"rollout status deployment/cobalt-controller-manager", "kind: StorageCluster", "kind: Volume", "created by the operator"} {
		if !strings.Contains(def, want) {
			t.Errorf("default NOTES lack %q:\n%s", want, def)
		}
	}
	all := mustRender(t, allOptions(t)).notes
	for _, want := range []string{`StorageCluster "cobalt" was created`, "provided by you", "ServiceMonitor", "grafana_dashboard"} {
		if !strings.Contains(all, want) {
			t.Errorf("NOTES with every option lack %q:\n%s", want, all)
		}
	}
}

func nested(t testing.TB, u *unstructured.Unstructured, fields ...string) map[string]any {
	t.Helper()
	m, found, err := unstructured.NestedMap(u.Object, fields...)
	if err != nil || !found {
		t.Fatalf("%s: no map at %v (err %v)", objectKey(u), fields, err)
	}
	return m
}

func managerContainer(t testing.TB, r *rendered) map[string]any {
	t.Helper()
	dep := find(t, r.objects, "Deployment", "cobalt-controller-manager")
	containers, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	for _, c := range containers {
		if m := c.(map[string]any); m["name"] == "manager" {
			return m
		}
	}
	t.Fatalf("Deployment has no container named manager: %v", containers)
	return nil
}

func managerArgs(t testing.TB, r *rendered) []string {
	t.Helper()
	var args []string
	list, _ := managerContainer(t, r)["args"].([]any)
	for _, a := range list {
		args = append(args, a.(string))
	}
	return args
}

func decodeSecretData(t testing.TB, secret *unstructured.Unstructured) map[string][]byte {
	t.Helper()
	data, _, _ := unstructured.NestedStringMap(secret.Object, "data")
	out := map[string][]byte{}
	for k, v := range data {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			t.Fatalf("Secret %s data %s is not base64: %v", secret.GetName(), k, err)
		}
		out[k] = b
	}
	return out
}

// TestCASecretNameReachesTheOperator: the operator's default CA Secret is <namespace>/cobalt-ca;
// another name is passed with --ca-secret.
func TestCASecretNameReachesTheOperator(t *testing.T) {
	if args := managerArgs(t, mustRender(t, nil)); slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--ca-secret=") }) {
		t.Errorf("default values pass --ca-secret: %v", args)
	}
	r := mustRender(t, map[string]any{"nodeAPI": map[string]any{"caSecret": map[string]any{"name": "my-ca"}}})
	if args := managerArgs(t, r); !slices.Contains(args, "--ca-secret=cobalt-system/my-ca") {
		t.Errorf("manager args %v lack --ca-secret=cobalt-system/my-ca", args)
	}
}

// TestKubeVersionIsEnforced: helm refuses clusters older than the chart's kubeVersion (the CRDs'
// CEL rules need a recent API server).
func TestKubeVersionIsEnforced(t *testing.T) {
	for _, tc := range []struct {
		version string
		ok      bool
	}{{"v1.37.2", true}, {"v1.30.0", true}, {"v1.29.9", false}} {
		_, err := renderFor(t, tc.version, nil)
		if (err == nil) != tc.ok {
			t.Errorf("Kubernetes %s: render error %v, want ok=%v", tc.version, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "chart requires kubeVersion") {
			t.Errorf("Kubernetes %s: error %q does not name kubeVersion", tc.version, err)
		}
	}
}
