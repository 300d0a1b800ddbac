package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
	nodeclient "github.com/cobaltstore/cobalt/node-daemon/client"
)

// heartbeat is the Runnable that keeps one Store object per selected device up to date.
type heartbeat struct {
	cfg    *Config
	client client.Client
	node   *node
	now    func() time.Time
	log    logr.Logger
}

// Start implements manager.Runnable: it reports once the devices are prepared, then every
// HeartbeatInterval until ctx ends. A failed report is logged and retried at the next tick.
func (h *heartbeat) Start(ctx context.Context) error {
	select {
	case <-h.node.prepared:
	case <-ctx.Done():
		return nil
	}
	ticker := time.NewTicker(h.cfg.HeartbeatInterval)
	defer ticker.Stop()
	for {
		if err := h.report(ctx); err != nil && ctx.Err() == nil {
			h.log.Error(err, "heartbeat failed")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// report creates or updates the Store object of every device.
func (h *heartbeat) report(ctx context.Context) error {
	var errs []error
	endpoint := h.node.endpoint()
	for _, r := range h.node.reports() {
		if err := h.reportOne(ctx, r, endpoint); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (h *heartbeat) reportOne(ctx context.Context, r report, endpoint string) error {
	want := desiredStore(h.cfg, r.device)
	var st storagev1alpha1.Store
	err := h.client.Get(ctx, client.ObjectKeyFromObject(want), &st)
	if apierrors.IsNotFound(err) {
		st = *want
		if err := h.client.Create(ctx, &st); err != nil {
			return fmt.Errorf("create Store %s: %w", want.Name, err)
		}
		h.log.Info("created Store", "store", want.Name, "device", r.device.decision.Path)
	} else if err != nil {
		return fmt.Errorf("get Store %s: %w", want.Name, err)
	}
	if st.Spec.NodeName != h.cfg.NodeName || st.Spec.DevicePath != r.device.decision.Path {
		return fmt.Errorf("store %s belongs to %s:%s, not to this device", st.Name, st.Spec.NodeName, st.Spec.DevicePath)
	}
	ep := ""
	if r.snap != nil {
		ep = endpoint
	}
	if st.Annotations[nodeclient.EndpointAnnotation] != ep {
		base := st.DeepCopy()
		applyEndpoint(&st, ep)
		if err := h.client.Patch(ctx, &st, client.MergeFrom(base)); err != nil {
			return fmt.Errorf("patch Store %s endpoint: %w", st.Name, err)
		}
	}
	base := st.DeepCopy()
	applyStatus(&st, r.device.reason, r.snap, metav1.NewTime(h.now()))
	if err := h.client.Status().Patch(ctx, &st, client.MergeFrom(base)); err != nil {
		return fmt.Errorf("patch Store %s status: %w", st.Name, err)
	}
	return nil
}
