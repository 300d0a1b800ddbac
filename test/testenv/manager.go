package testenv

import (
	"context"
	"errors"
	"fmt"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// managerStartTimeout bounds how long StartManager waits for a manager's cache to sync.
const managerStartTimeout = time.Minute

// runningManager is a manager StartManager started: cancel stops it, done yields what its Start
// returned.
type runningManager struct {
	cancel context.CancelFunc
	done   <-chan error
}

func (m *runningManager) stop() error {
	m.cancel()
	if err := <-m.done; err != nil {
		return fmt.Errorf("testenv: manager: %w", err)
	}
	return nil
}

// NewManager returns a manager for the API server with opts, where Scheme defaults to e.Scheme
// and the metrics and health probe servers are off unless opts turns them on, so that several
// managers (and packages tested in parallel) do not fight over ports.
func (e *Env) NewManager(opts ctrl.Options) (ctrl.Manager, error) {
	if opts.Scheme == nil {
		opts.Scheme = e.Scheme
	}
	if opts.Metrics.BindAddress == "" {
		opts.Metrics = metricsserver.Options{BindAddress: "0"}
	}
	if opts.HealthProbeBindAddress == "" {
		opts.HealthProbeBindAddress = "0"
	}
	mgr, err := ctrl.NewManager(e.Config, opts)
	if err != nil {
		return nil, fmt.Errorf("testenv: new manager: %w", err)
	}
	return mgr, nil
}

// StartManager starts mgr with a context of its own, which Stop cancels, and returns once its
// cache has synced. It fails when the manager returns first or does not sync within a minute.
func (e *Env) StartManager(mgr ctrl.Manager) error {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	synced := make(chan bool, 1)
	go func() { synced <- mgr.GetCache().WaitForCacheSync(ctx) }()
	timer := time.NewTimer(managerStartTimeout)
	defer timer.Stop()
	select {
	case err := <-done:
		cancel()
		if err == nil {
			return errors.New("testenv: manager returned before its cache synced")
		}
		return fmt.Errorf("testenv: manager returned before its cache synced: %w", err)
	case ok := <-synced:
		if !ok {
			cancel()
			return errors.Join(errors.New("testenv: manager cache did not sync"), <-done)
		}
	case <-timer.C:
		cancel()
		return errors.Join(fmt.Errorf("testenv: manager cache did not sync within %s", managerStartTimeout), <-done)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	m := &runningManager{cancel: cancel, done: done}
	if e.mu.stopped {
		return errors.Join(errors.New("testenv: the API server is stopped"), m.stop())
	}
	e.mu.managers = append(e.mu.managers, m)
	return nil
}
