package controller

import (
	"context"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// snapshotFinalizer is the finalizer fakeSnapshotter puts on the Snapshots it takes, as the
// operator's reconciler keeps a Snapshot until its node freed it.
const snapshotFinalizer = "test.cobalt.io/snapshot"

// fakeSnapshotter plays the operator's Snapshot reconciler in the package's tests, as the
// in-memory NodeClient plays the nodes: it takes a Snapshot once its source Volume is created on
// its node (status as the reconciler reports it: placement, restore size, creation time,
// Ready=True Taken), reports VolumeNotReady until then, and SnapshotFailed with the message a
// test set for the source Volume (Fail). A held snapshot (Hold) is neither taken nor, once
// deleted, released. It reads and writes through the test's direct client, never a cache.
type fakeSnapshotter struct {
	client client.Client
	mu     struct {
		sync.Mutex
		failing map[string]string // source Volume name → failure message
		holding map[string]bool   // Snapshot name → not taken, not released
	}
}

func newFakeSnapshotter(c client.Client) *fakeSnapshotter {
	f := &fakeSnapshotter{client: c}
	f.mu.failing = map[string]string{}
	f.mu.holding = map[string]bool{}
	return f
}

// Fail makes snapshots of the Volume named volume fail with message; "" heals it.
func (f *fakeSnapshotter) Fail(volume, message string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mu.failing[volume] = message
}

// Hold keeps the Snapshot named name from being taken and, once deleted, from going; false
// releases it.
func (f *fakeSnapshotter) Hold(name string, hold bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mu.holding[name] = hold
}

func (f *fakeSnapshotter) state(volume, snapshot string) (failure string, held bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.failing[volume], f.mu.holding[snapshot]
}

// SetupWithManager registers the fake with mgr.
func (f *fakeSnapshotter) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).For(&v1alpha1.Snapshot{}).Named("fake-snapshot").Complete(f)
}

// retryAfter is how soon a Snapshot waiting for something is looked at again.
const retryAfter = 50 * time.Millisecond

func (f *fakeSnapshotter) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	snap := &v1alpha1.Snapshot{}
	if err := f.client.Get(ctx, req.NamespacedName, snap); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	failure, held := f.state(snap.Spec.VolumeName, snap.Name)
	switch {
	case !snap.DeletionTimestamp.IsZero():
		if held {
			return ctrl.Result{RequeueAfter: retryAfter}, nil
		}
		if controllerutil.RemoveFinalizer(snap, snapshotFinalizer) {
			return ctrl.Result{}, client.IgnoreNotFound(f.client.Update(ctx, snap))
		}
		return ctrl.Result{}, nil
	case snap.Status.ReadyToUse:
		return ctrl.Result{}, nil
	case held: // Hold(name, false) makes no event: look again
		return ctrl.Result{RequeueAfter: retryAfter}, nil
	case controllerutil.AddFinalizer(snap, snapshotFinalizer):
		return ctrl.Result{RequeueAfter: time.Millisecond}, f.client.Update(ctx, snap)
	}

	vol := &v1alpha1.Volume{}
	err := f.client.Get(ctx, client.ObjectKey{Namespace: snap.Namespace, Name: snap.Spec.VolumeName}, vol)
	if err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	ready := metav1.Condition{Type: v1alpha1.ConditionReady, ObservedGeneration: snap.Generation}
	result := ctrl.Result{}
	switch {
	case failure != "":
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, v1alpha1.ReasonSnapshotFailed, failure
	case err != nil || vol.Status.Placement == nil || vol.Status.AllocatedSize == nil:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, v1alpha1.ReasonVolumeNotReady, "volume "+snap.Spec.VolumeName+" is not created yet"
		result.RequeueAfter = retryAfter
	default:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionTrue, v1alpha1.ReasonTaken, "taken on store "+vol.Status.Placement.Store
		size := vol.Spec.Size.DeepCopy()
		snap.Status.ReadyToUse = true
		snap.Status.Placement = vol.Status.Placement.DeepCopy()
		snap.Status.SourceVolumeID = vol.NodeVolumeID()
		snap.Status.CreationTime = &metav1.Time{Time: time.Now().Truncate(time.Second)}
		snap.Status.RestoreSize = &size
	}
	meta.SetStatusCondition(&snap.Status.Conditions, ready)
	snap.Status.ObservedGeneration = snap.Generation
	return result, f.client.Status().Update(ctx, snap)
}
