//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/release"
	"k8s.io/cli-runtime/pkg/genericclioptions"
)

// helmRelease drives one release of the chart with the Helm SDK, as `helm --kubeconfig K -n NS`
// would (release records in Secrets).
type helmRelease struct {
	name, namespace string
	chart           *chart.Chart
	cfg             *action.Configuration
}

func newHelmRelease(kubeconfig, chartDir, namespace, name string, logf func(string, ...any)) (*helmRelease, error) {
	ch, err := loader.Load(chartDir)
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", chartDir, err)
	}
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = &kubeconfig
	flags.Namespace = &namespace
	cfg := new(action.Configuration)
	if err := cfg.Init(flags, namespace, "secret", logf); err != nil {
		return nil, fmt.Errorf("helm configuration: %w", err)
	}
	return &helmRelease{name: name, namespace: namespace, chart: ch, cfg: cfg}, nil
}

func (h *helmRelease) install(ctx context.Context, values map[string]any) (*release.Release, error) {
	in := action.NewInstall(h.cfg)
	in.ReleaseName, in.Namespace, in.CreateNamespace, in.Timeout = h.name, h.namespace, true, 2*time.Minute
	rel, err := in.RunWithContext(ctx, h.chart, values)
	if err != nil {
		return nil, fmt.Errorf("helm install %s: %w", h.name, err)
	}
	return rel, nil
}

func (h *helmRelease) upgrade(ctx context.Context, values map[string]any) (*release.Release, error) {
	up := action.NewUpgrade(h.cfg)
	up.Namespace, up.Timeout = h.namespace, 2*time.Minute
	rel, err := up.RunWithContext(ctx, h.name, h.chart, values)
	if err != nil {
		return nil, fmt.Errorf("helm upgrade %s: %w", h.name, err)
	}
	return rel, nil
}

func (h *helmRelease) uninstall() error {
	un := action.NewUninstall(h.cfg)
	un.Wait, un.Timeout = true, 2*time.Minute
	if _, err := un.Run(h.name); err != nil {
		return fmt.Errorf("helm uninstall %s: %w", h.name, err)
	}
	return nil
}

// installed says whether the release exists.
func (h *helmRelease) installed() bool {
	_, err := action.NewGet(h.cfg).Run(h.name)
	return err == nil
}
