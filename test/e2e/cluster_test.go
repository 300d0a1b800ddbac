//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"

	. "github.com/onsi/gomega"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
)

const (
	releaseName      = "cobalt"
	releaseNamespace = "cobalt-system"
	clusterName      = "e2e"
	// leaseName is the operator's leader election lease (cmd/manager).
	leaseName  = "cobalt-operator.storage.cobalt.io"
	usableSize = int64(2 << 30)
	ext4Size   = int64(128 << 20)
)

// chartValues are the values of every helm install/upgrade: the images loaded into the node
// and, once withCluster, a StorageCluster on the suite's two loop devices whose engine uses
// cacheType.
func chartValues(withCluster bool, cacheType string) map[string]any {
	values := map[string]any{
		"operator": map[string]any{
			"image": map[string]any{"repository": "cobalt/manager", "tag": s.env.imageTag, "pullPolicy": "IfNotPresent"},
		},
		"nodeDaemon": map[string]any{
			"image": map[string]any{"repository": "cobalt/node-daemon", "tag": s.env.imageTag},
		},
		// The kubelet's root directory is under the cluster's rshared mount (hack/cluster/env.sh);
		// the sidecar images images.sh imported carry the chart's default names and tags.
		"csi": map[string]any{"kubeletDir": s.env.kubeletDir},
	}
	if withCluster {
		values["storageCluster"] = map[string]any{
			"enabled": true,
			"name":    clusterName,
			"spec": map[string]any{
				"devices": map[string]any{"paths": []any{s.usable.path, s.ext4.path}},
				"engine":  map[string]any{"cacheType": cacheType},
				"nodeDaemon": map[string]any{
					"stateDir":        filepath.Join(s.env.dir, "state"),
					"imagePullPolicy": "IfNotPresent",
				},
			},
		}
	}
	return values
}

// podsWith lists the pods of the release namespace that carry labels.
func podsWith(ctx context.Context, labels map[string]string) ([]corev1.Pod, error) {
	var pods corev1.PodList
	if err := s.c.List(ctx, &pods, client.InNamespace(releaseNamespace), client.MatchingLabels(labels)); err != nil {
		return nil, fmt.Errorf("list pods %v: %w", labels, err)
	}
	return pods.Items, nil
}

var nodeDaemonLabels = map[string]string{"app.kubernetes.io/name": "cobalt-node-daemon", "app.kubernetes.io/instance": clusterName}

// nodeDaemonUID is the UID of the one node daemon pod. A test that makes the daemon restart waits
// for a Ready pod of another UID: creation timestamps have a resolution of a second, and a pod
// created in the same second as the change looks older than a time taken before it.
func nodeDaemonUID(ctx context.Context) types.UID {
	pods, err := podsWith(ctx, nodeDaemonLabels)
	Expect(err).NotTo(HaveOccurred())
	Expect(pods).To(HaveLen(1), "node daemon pods")
	return pods[0].UID
}

// readyNodeDaemon is the one node daemon pod, which must be Ready and not terminating.
func readyNodeDaemon(g Gomega, ctx context.Context) corev1.Pod {
	pods, err := podsWith(ctx, nodeDaemonLabels)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(pods).To(HaveLen(1), "node daemon pods")
	p := pods[0]
	g.Expect(p.DeletionTimestamp).To(BeNil(), "node daemon pod %s is terminating", p.Name)
	g.Expect(podReady(&p)).To(BeTrue(), "node daemon pod %s is not Ready: %s", p.Name, podSummary(&p))
	return p
}

// daemonMetrics returns the unlabelled samples (gauges, counters, untyped) of the node daemon
// pod's Prometheus metrics, read from its metrics port (8080, the operator's
// nodeDaemonMetricsPort) through the API server's pod proxy and parsed with Prometheus' own text
// parser.
func daemonMetrics(ctx context.Context, pod string) (map[string]float64, error) {
	raw, err := s.kube.CoreV1().Pods(releaseNamespace).ProxyGet("http", pod, "8080", "metrics", nil).DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("metrics of %s: %w", pod, err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("metrics of %s: %w", pod, err)
	}
	samples := map[string]float64{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) > 0 {
				continue
			}
			switch {
			case m.GetGauge() != nil:
				samples[name] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				samples[name] = m.GetCounter().GetValue()
			case m.GetUntyped() != nil:
				samples[name] = m.GetUntyped().GetValue()
			}
		}
	}
	return samples, nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podSummary says what a pod is waiting for, for failure messages.
func podSummary(p *corev1.Pod) string {
	parts := []string{string(p.Status.Phase)}
	for _, cs := range p.Status.ContainerStatuses {
		switch {
		case cs.State.Waiting != nil:
			parts = append(parts, fmt.Sprintf("%s waiting: %s %s", cs.Name, cs.State.Waiting.Reason, cs.State.Waiting.Message))
		case cs.State.Terminated != nil:
			parts = append(parts, fmt.Sprintf("%s terminated: %s (exit %d) %s", cs.Name, cs.State.Terminated.Reason, cs.State.Terminated.ExitCode, cs.State.Terminated.Message))
		}
		if cs.RestartCount > 0 {
			parts = append(parts, fmt.Sprintf("%s restarts: %d", cs.Name, cs.RestartCount))
		}
	}
	return strings.Join(parts, "; ")
}

// storeOn is the Store of the suite's cluster for device path.
func storeOn(g Gomega, ctx context.Context, device string) storagev1alpha1.Store {
	var stores storagev1alpha1.StoreList
	g.Expect(s.c.List(ctx, &stores, client.MatchingLabels{
		storagev1alpha1.LabelClusterName:      clusterName,
		storagev1alpha1.LabelClusterNamespace: releaseNamespace,
	})).To(Succeed())
	for _, st := range stores.Items {
		if st.Spec.DevicePath == device {
			return st
		}
	}
	g.Expect(fmt.Errorf("no Store for %s among %d Stores of the cluster", device, len(stores.Items))).NotTo(HaveOccurred())
	return storagev1alpha1.Store{}
}

// readyStore is the Store for device, which must be Ready with a capacity.
func readyStore(g Gomega, ctx context.Context, device string) storagev1alpha1.Store {
	st := storeOn(g, ctx, device)
	g.Expect(meta.IsStatusConditionTrue(st.Status.Conditions, storagev1alpha1.ConditionReady)).To(BeTrue(),
		"Store %s (%s) not Ready: %+v", st.Name, device, st.Status.Conditions)
	g.Expect(st.Status.UUID).NotTo(BeEmpty(), "Store %s has no uuid", st.Name)
	g.Expect(st.Status.Capacity).NotTo(BeNil(), "Store %s has no capacity", st.Name)
	g.Expect(st.Status.Used).NotTo(BeNil(), "Store %s has no used bytes", st.Name)
	return st
}

// podLog collects a container's log while it runs (a follow stream), so the log of a pod that
// gets deleted can still be checked.
type podLog struct {
	mu   sync.Mutex
	buf  strings.Builder
	done chan struct{}
}

func followLog(ctx context.Context, pod string) (*podLog, error) {
	stream, err := s.kube.CoreV1().Pods(releaseNamespace).GetLogs(pod, &corev1.PodLogOptions{Follow: true}).Stream(ctx)
	if err != nil {
		return nil, fmt.Errorf("follow log of %s: %w", pod, err)
	}
	l := &podLog{done: make(chan struct{})}
	go func() {
		defer close(l.done)
		defer stream.Close()
		r := bufio.NewReader(stream)
		for {
			line, err := r.ReadString('\n')
			l.mu.Lock()
			l.buf.WriteString(line)
			l.mu.Unlock()
			if err != nil {
				if err != io.EOF {
					l.mu.Lock()
					fmt.Fprintf(&l.buf, "[log stream ended: %v]\n", err)
					l.mu.Unlock()
				}
				return
			}
		}
	}()
	return l, nil
}

func (l *podLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// logEntries parses the JSON lines of a node daemon log (controller-runtime's zap encoder);
// other lines are ignored.
func logEntries(log string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(log, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// hasLogEntry says whether some entry has msg and every key=value of want.
func hasLogEntry(log, msg string, want map[string]string) bool {
	for _, e := range logEntries(log) {
		if e["msg"] != msg {
			continue
		}
		ok := true
		for k, v := range want {
			if fmt.Sprint(e[k]) != v {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}
