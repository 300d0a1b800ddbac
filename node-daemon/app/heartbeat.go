package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/node-daemon/devices"
	"github.com/cobaltstore/cobalt/node-daemon/metrics"
)

// heartbeat is the Runnable that keeps one Store object per selected device up to date.
type heartbeat struct {
	cfg      *Config
	client   client.Client
	recorder events.EventRecorder
	node     *node
	now      func() time.Time
	log      logr.Logger
	// announced holds the devices whose preparation outcome was recorded as an event since the
	// daemon started. Only the heartbeat goroutine uses it.
	announced map[string]bool
	// published holds the Stores whose endpoint annotation this daemon set. Only the heartbeat
	// goroutine uses it.
	published map[string]bool
	// health turns changes of each Store's engine health into events. Only the heartbeat
	// goroutine uses it.
	health engineHealthEvents
	// failed holds the devices taken out of service (node.retireFailed) whose DeviceFailed event
	// is not recorded yet. Only the heartbeat goroutine uses it.
	failed []*device
}

// EventReasonDeviceFailed is the Warning recorded on a Store whose device failed under the
// running daemon, which then stopped serving it.
const EventReasonDeviceFailed = "DeviceFailed"

// withdrawTimeout bounds how long a stopping daemon tries to take its endpoint back.
const withdrawTimeout = 5 * time.Second

// Start implements manager.Runnable: it reports once the devices are prepared, again as soon as
// the gRPC server serves (so the endpoint annotation, without which the operator keeps the Store
// not Ready, appears without waiting for a tick), then every HeartbeatInterval until ctx ends. A
// failed report is logged and retried at the next tick.
func (h *heartbeat) Start(ctx context.Context) error {
	select {
	case <-h.node.prepared:
	case <-ctx.Done():
		return nil
	}
	ticker := time.NewTicker(h.cfg.HeartbeatInterval)
	defer ticker.Stop()
	published := h.node.published
	for {
		if err := h.report(ctx); err != nil && ctx.Err() == nil {
			h.log.Error(err, "heartbeat failed")
		}
		select {
		case <-ctx.Done():
			h.withdraw()
			return nil
		case <-ticker.C:
		case <-published:
			published = nil // report once more, now with the endpoint; a nil channel never fires
		}
	}
}

// report creates or updates the Store object of every device.
func (h *heartbeat) report(ctx context.Context) error {
	var errs []error
	endpoint := h.node.endpoint()
	h.failed = append(h.failed, h.node.retireFailed()...)
	for _, r := range h.node.reports() {
		st, err := h.reportOne(ctx, r, endpoint)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		h.announce(st, r.device)
		h.reportFailed(st, r.device)
		h.reportHealth(st, r.snap)
	}
	return errors.Join(errs...)
}

// withdraw removes the endpoint annotation from the Stores this daemon published it on, as the
// daemon stops: its gRPC server stops with it, so the operator turns those Stores not Ready
// (EndpointPending) at once instead of calling an address nobody serves until the heartbeat goes
// stale. The Manager's context has ended by then, so it runs on its own, bounded one.
func (h *heartbeat) withdraw() {
	if len(h.published) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), withdrawTimeout)
	defer cancel()
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"annotations": map[string]any{storagev1alpha1.AnnotationNodeEndpoint: nil}}})
	if err != nil {
		h.log.Error(err, "build the endpoint withdrawal patch")
		return
	}
	for name := range h.published {
		st := &storagev1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if err := h.client.Patch(ctx, st, client.RawPatch(types.MergePatchType, patch)); err != nil && !apierrors.IsNotFound(err) {
			h.log.Error(err, "withdraw the endpoint", "store", name)
			continue
		}
		delete(h.published, name)
		h.log.Info("withdrew the endpoint", "store", name)
	}
}

// announce records, once per daemon start, what became of a device as an event on its Store.
func (h *heartbeat) announce(st *storagev1alpha1.Store, d *device) {
	if h.announced[d.decision.Path] || h.recorder == nil {
		return
	}
	if h.announced == nil {
		h.announced = map[string]bool{}
	}
	h.announced[d.decision.Path] = true
	switch {
	case d.store == nil && d.decision.StoreCluster != "":
		h.recorder.Eventf(st, nil, corev1.EventTypeWarning, "StoreOfAnotherCluster", "Prepare", "%s on node %s is not used: %s", d.decision.Path, h.cfg.NodeName, d.reason)
	case d.store == nil:
		h.recorder.Eventf(st, nil, corev1.EventTypeWarning, "DeviceNotUsed", "Prepare", "%s on node %s is not used: %s", d.decision.Path, h.cfg.NodeName, d.reason)
	case d.decision.Action == devices.Mkfs && d.decision.StoreCluster != "":
		h.recorder.Eventf(st, nil, corev1.EventTypeWarning, "StoreCreated", "Prepare", "formatted %s on node %s as store %s, destroying a store of cluster %s as spec.devices.allowWipe allows",
			d.decision.Path, h.cfg.NodeName, d.store.UUID(), d.decision.StoreCluster)
	case d.decision.Action == devices.Mkfs:
		h.recorder.Eventf(st, nil, corev1.EventTypeNormal, "StoreCreated", "Prepare", "formatted %s on node %s as store %s", d.decision.Path, h.cfg.NodeName, d.store.UUID())
	case d.decision.Adopt:
		h.recorder.Eventf(st, nil, corev1.EventTypeNormal, "StoreAdopted", "Prepare", "mounted store %s from %s on node %s; its label named no cluster (label version 2): it now names this cluster",
			d.store.UUID(), d.decision.Path, h.cfg.NodeName)
	default:
		h.recorder.Eventf(st, nil, corev1.EventTypeNormal, "StoreMounted", "Prepare", "mounted store %s from %s on node %s", d.store.UUID(), d.decision.Path, h.cfg.NodeName)
	}
}

// reportFailed records the DeviceFailed event on st once, when d was taken out of service.
func (h *heartbeat) reportFailed(st *storagev1alpha1.Store, d *device) {
	i := slices.Index(h.failed, d)
	if i < 0 {
		return
	}
	h.failed = slices.Delete(h.failed, i, i+1)
	if h.recorder != nil {
		h.recorder.Eventf(st, nil, corev1.EventTypeWarning, EventReasonDeviceFailed, "ReportHealth", "%s on node %s failed under the running daemon: %s",
			d.decision.Path, h.cfg.NodeName, truncate(d.reason, 900))
	}
}

// reportHealth logs a change of st's engine health and records it as an event on st: a Warning
// when it got worse, a Normal event when it is OK again.
func (h *heartbeat) reportHealth(st *storagev1alpha1.Store, snap *metrics.StoreSnapshot) {
	ev, ok := h.health.observe(st.Name, snap)
	if !ok {
		return
	}
	if ev.Type == corev1.EventTypeWarning {
		h.log.Error(nil, "store engine health worsened", "store", st.Name, "reason", ev.Reason, "note", ev.Note)
	} else {
		h.log.Info("store engine health recovered", "store", st.Name)
	}
	if h.recorder != nil {
		h.recorder.Eventf(st, nil, ev.Type, ev.Reason, "ReportHealth", "%s", ev.Note)
	}
}

func (h *heartbeat) reportOne(ctx context.Context, r report, endpoint string) (*storagev1alpha1.Store, error) {
	want := desiredStore(h.cfg, r.device)
	var st storagev1alpha1.Store
	err := h.client.Get(ctx, client.ObjectKeyFromObject(want), &st)
	if apierrors.IsNotFound(err) {
		st = *want
		if err := h.client.Create(ctx, &st); err != nil {
			return nil, fmt.Errorf("create Store %s: %w", want.Name, err)
		}
		h.log.Info("created Store", "store", want.Name, "device", r.device.decision.Path)
	} else if err != nil {
		return nil, fmt.Errorf("get Store %s: %w", want.Name, err)
	}
	if st.Spec.NodeName != h.cfg.NodeName || st.Spec.DevicePath != r.device.decision.Path {
		return nil, fmt.Errorf("store %s belongs to %s:%s, not to this device", st.Name, st.Spec.NodeName, st.Spec.DevicePath)
	}
	ep := ""
	if r.snap != nil {
		ep = endpoint
	}
	if st.Annotations[storagev1alpha1.AnnotationNodeEndpoint] != ep {
		base := st.DeepCopy()
		applyEndpoint(&st, ep)
		if err := h.client.Patch(ctx, &st, client.MergeFrom(base)); err != nil {
			return nil, fmt.Errorf("patch Store %s endpoint: %w", st.Name, err)
		}
	}
	if ep != "" {
		if h.published == nil {
			h.published = map[string]bool{}
		}
		h.published[st.Name] = true
	}
	base := st.DeepCopy()
	applyStatus(&st, r.device.reason, r.snap, metav1.NewTime(h.now()))
	if err := h.client.Status().Patch(ctx, &st, client.MergeFrom(base)); err != nil {
		return nil, fmt.Errorf("patch Store %s status: %w", st.Name, err)
	}
	return &st, nil
}
