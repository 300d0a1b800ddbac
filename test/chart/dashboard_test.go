package chart

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	nodemetrics "github.com/cobaltstore/cobalt/node-daemon/metrics"
)

// dashboard is the part of a Grafana dashboard the test reads.
type dashboard struct {
	Title  string `json:"title"`
	UID    string `json:"uid"`
	Panels []struct {
		Type    string `json:"type"`
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

var metricName = regexp.MustCompile(`\b(cobalt_[a-z0-9_]+|controller_runtime_[a-z0-9_]+|workqueue_[a-z0-9_]+)\b`)

// query is one panel query: the metric families it reads and the labels it groups by.
type query struct {
	panel, expr string
	metrics     []string
	byLabels    []string
}

var byClause = regexp.MustCompile(`\bby \(([^)]*)\)`)

// dashboardQueries reads the dashboard's queries (histogram series _bucket/_count/_sum map to
// their family).
func dashboardQueries(t *testing.T) []query {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chartDir(t), "dashboards", "cobalt.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("dashboards/cobalt.json is not JSON: %v", err)
	}
	if d.Title == "" || d.UID == "" {
		t.Errorf("dashboard lacks a title or uid")
	}
	var out []query
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			q := query{panel: p.Title, expr: tg.Expr}
			for _, n := range metricName.FindAllString(tg.Expr, -1) {
				for _, suffix := range []string{"_bucket", "_count", "_sum"} {
					if strings.HasSuffix(n, "_seconds"+suffix) {
						n = strings.TrimSuffix(n, suffix)
					}
				}
				if !slices.Contains(q.metrics, n) {
					q.metrics = append(q.metrics, n)
				}
			}
			if len(q.metrics) == 0 {
				t.Errorf("panel %q queries no Cobalt or controller-runtime metric: %s", p.Title, tg.Expr)
			}
			for _, m := range byClause.FindAllStringSubmatch(tg.Expr, -1) {
				for _, l := range strings.Split(m[1], ",") {
					if l = strings.TrimSpace(l); l != "" && !slices.Contains(q.byLabels, l) {
						q.byLabels = append(q.byLabels, l)
					}
				}
			}
			out = append(out, q)
		}
	}
	return out
}

// nodeDaemonMetrics are the families the node daemon exports, read from its own collectors.
func nodeDaemonMetrics(t *testing.T) exported {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	snap := nodemetrics.StoreSnapshot{UUID: "u", DevicePath: "/dev/x", CacheShards: []nodemetrics.Shard{{Cache: "onode", Hits: 1}}}
	if err := reg.Register(nodemetrics.NewCollector(func() []nodemetrics.StoreSnapshot { return []nodemetrics.StoreSnapshot{snap} })); err != nil {
		t.Fatal(err)
	}
	repl := nodemetrics.ReplicaStat{Volume: "ns/v", Store: "u", Node: "n", State: "InSync", SyncedBytes: map[string]int64{"rebuild": 1}, LastScrub: time.Unix(1, 0)}
	if err := reg.Register(nodemetrics.NewReplicationCollector(func() []nodemetrics.ReplicaStat { return []nodemetrics.ReplicaStat{repl} })); err != nil {
		t.Fatal(err)
	}
	g := nodemetrics.NewGRPC()
	if err := g.Register(reg); err != nil {
		t.Fatal(err)
	}
	// One call, so the histogram has a series to gather.
	_, _ = g.Unary(t.Context(), nil, &grpc.UnaryServerInfo{FullMethod: "/probe"}, func(context.Context, any) (any, error) { return nil, nil })
	return gatherNames(t, reg)
}

// operatorMetrics are the controller-runtime families a running controller exports: a manager
// with one controller runs against the test API server until it has reconciled once.
func operatorMetrics(t *testing.T) exported {
	t.Helper()
	mgr, err := server.env.NewManager(ctrl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	reconciled := make(chan struct{}, 1)
	err = ctrl.NewControllerManagedBy(mgr).Named("dashboardprobe").For(&corev1.ConfigMap{}).
		Complete(reconcile.Func(func(context.Context, reconcile.Request) (reconcile.Result, error) {
			select {
			case reconciled <- struct{}{}:
			default:
			}
			return reconcile.Result{}, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: releaseNamespace, Name: "dashboard-probe"}}
	if err := server.client.Create(t.Context(), cm); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reconciled:
	case <-time.After(time.Minute):
		t.Fatal("the probe controller did not reconcile within a minute")
	}
	return gatherNames(t, ctrlmetrics.Registry)
}

// exported maps each metric family to the label names its series carry.
type exported map[string][]string

func gatherNames(t *testing.T, g prometheus.Gatherer) exported {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := exported{}
	for _, f := range families {
		var labels []string
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if !slices.Contains(labels, l.GetName()) {
					labels = append(labels, l.GetName())
				}
			}
		}
		out[f.GetName()] = labels
	}
	return out
}

// scrapeLabels are added by Prometheus's Kubernetes discovery, and "le" is every histogram
// bucket's bound: a query may group by them whatever the exporter sets.
var scrapeLabels = []string{"namespace", "pod", "instance", "job", "le"}

// TestDashboardQueriesExportedMetrics: every metric the Grafana dashboard queries is one that the
// node daemon's collectors or a controller-runtime controller actually export, and every label it
// groups by is one those series carry.
func TestDashboardQueriesExportedMetrics(t *testing.T) {
	all := nodeDaemonMetrics(t)
	for name, labels := range operatorMetrics(t) {
		all[name] = labels
	}
	queries := dashboardQueries(t)
	families := 0
	seen := map[string]bool{}
	for _, q := range queries {
		var labels []string
		for _, m := range q.metrics {
			l, ok := all[m]
			if !ok {
				t.Errorf("panel %q queries %s, which nothing exports", q.panel, m)
			}
			labels = append(labels, l...)
			if !seen[m] {
				seen[m] = true
				families++
			}
		}
		for _, l := range q.byLabels {
			if !slices.Contains(labels, l) && !slices.Contains(scrapeLabels, l) {
				t.Errorf("panel %q groups by %q, which none of %v carries (they have %v)", q.panel, l, q.metrics, labels)
			}
		}
	}
	if families < 10 {
		t.Fatalf("the dashboard queries only %d metric families", families)
	}
}

// TestDashboardConfigMap: off by default; when on, it carries the dashboard JSON and the label
// the Grafana sidecar looks for.
func TestDashboardConfigMap(t *testing.T) {
	for _, o := range mustRender(t, nil).objects {
		if o.GetKind() == "ConfigMap" {
			t.Errorf("default values render ConfigMap %s", o.GetName())
		}
	}
	cm := find(t, mustRender(t, allOptions(t)).objects, "ConfigMap", "cobalt-grafana-dashboard")
	if cm.GetLabels()["grafana_dashboard"] != "1" {
		t.Errorf("dashboard ConfigMap labels = %v, want grafana_dashboard=1", cm.GetLabels())
	}
	data, err := os.ReadFile(filepath.Join(chartDir(t), "dashboards", "cobalt.json"))
	if err != nil {
		t.Fatal(err)
	}
	got, _, _ := unstructuredString(cm.Object, "data", "cobalt.json")
	if strings.TrimSpace(got) != strings.TrimSpace(string(data)) {
		t.Errorf("the ConfigMap's cobalt.json is not dashboards/cobalt.json")
	}
}
