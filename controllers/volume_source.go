package controllers

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// A Volume with spec.source (a restore from a Snapshot or a clone of a Volume) shares its
// source's data on the source's Store, so it is created there and nowhere else, at least as large
// as its source, and only once its source is ready. The source matters only until the Volume is
// created: after that either may be deleted independently.

// volumeSource is a resolved spec.source: where the source lives and what the node calls it.
type volumeSource struct {
	// Name is "snapshot <namespace>/<name>" or "volume <namespace>/<name>", for messages.
	Name string
	// Store is the Store that holds the source; the Volume must be placed there.
	Store string
	// Size is the source's size: the smallest Volume that can be made from it.
	Size resource.Quantity
	// Content is the node's name of the source, for CreateVolume.
	Content ContentSource
}

// reconcileSource resolves the source of a Volume that has one and is not created yet. It stops
// the reconcile while the source is not ready (SourceNotReady; the Snapshot and Volume watches
// wake it up), when the Volume is smaller than its source (SourceTooLarge: it waits for a larger
// size) or when it is pinned to another Store than its source's (Unschedulable). Otherwise it
// records the source for placement and creation.
func (r *VolumeReconciler) reconcileSource(ctx context.Context, vol *v1alpha1.Volume, obs *volumeObservation) (ctrl.Result, bool, error) {
	if vol.Spec.Source == nil || vol.Status.AllocatedSize != nil {
		return ctrl.Result{}, false, nil
	}
	src, waiting, err := r.resolveSource(ctx, vol)
	switch {
	case err != nil:
		return ctrl.Result{}, true, err
	case waiting != "":
		obs.SourceWaiting = waiting
		return ctrl.Result{RequeueAfter: backoff(vol, obs.Now)}, true, nil
	}
	if vol.Spec.Size.Cmp(src.Size) < 0 {
		obs.SourceTooLarge = fmt.Sprintf("the volume's size %s is smaller than its source %s (%s): ask for at least %s",
			vol.Spec.Size.String(), src.Name, src.Size.String(), src.Size.String())
		r.warnOnce(vol, v1alpha1.ReasonSourceTooLarge, obs.SourceTooLarge)
		return ctrl.Result{}, true, nil
	}
	if vol.Spec.StoreName != "" && vol.Spec.StoreName != src.Store {
		obs.SourceMisplaced = fmt.Sprintf("storeName %s is not store %s, which holds its source %s: a restore or clone shares its source's data and must be on the same store",
			vol.Spec.StoreName, src.Store, src.Name)
		r.warnOnce(vol, v1alpha1.ReasonUnschedulable, obs.SourceMisplaced)
		return ctrl.Result{}, true, nil
	}
	obs.Source = &src
	return ctrl.Result{}, false, nil
}

// warnOnce records a Warning event unless the Volume's Ready condition already says msg.
func (r *VolumeReconciler) warnOnce(vol *v1alpha1.Volume, reason, msg string) {
	if c := meta.FindStatusCondition(vol.Status.Conditions, v1alpha1.ConditionReady); c == nil || c.Reason != reason || c.Message != msg {
		r.Recorder.Eventf(vol, nil, corev1.EventTypeWarning, reason, "Source", msg)
	}
}

// resolveSource looks up vol's source. waiting says why it cannot be used yet.
func (r *VolumeReconciler) resolveSource(ctx context.Context, vol *v1alpha1.Volume) (src volumeSource, waiting string, err error) {
	s := vol.Spec.Source
	if s.SnapshotName != "" {
		name := "snapshot " + vol.Namespace + "/" + s.SnapshotName
		snap := &v1alpha1.Snapshot{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: vol.Namespace, Name: s.SnapshotName}, snap); err != nil {
			if apierrors.IsNotFound(err) {
				return src, name + " does not exist", nil
			}
			return src, "", fmt.Errorf("get source %s of volume %s: %w", name, client.ObjectKeyFromObject(vol), err)
		}
		switch {
		case !snap.DeletionTimestamp.IsZero():
			return src, name + " is being deleted", nil
		case !snap.Status.ReadyToUse || snap.Status.Placement == nil || snap.Status.RestoreSize == nil:
			return src, name + " is not ready to use yet" + readyDetail(snap.Status.Conditions), nil
		}
		return volumeSource{Name: name, Store: snap.Status.Placement.Store, Size: *snap.Status.RestoreSize,
			Content: ContentSource{SnapshotID: snap.NodeSnapshotID()}}, "", nil
	}

	name := "volume " + vol.Namespace + "/" + s.VolumeName
	if s.VolumeName == vol.Name {
		return src, "a volume cannot be cloned from itself", nil
	}
	from := &v1alpha1.Volume{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: vol.Namespace, Name: s.VolumeName}, from); err != nil {
		if apierrors.IsNotFound(err) {
			return src, name + " does not exist", nil
		}
		return src, "", fmt.Errorf("get source %s of volume %s: %w", name, client.ObjectKeyFromObject(vol), err)
	}
	switch {
	case !from.DeletionTimestamp.IsZero():
		return src, name + " is being deleted", nil
	case from.Status.Placement == nil || from.Status.AllocatedSize == nil ||
		!meta.IsStatusConditionTrue(from.Status.Conditions, v1alpha1.ConditionReady):
		return src, name + " is not Ready yet" + readyDetail(from.Status.Conditions), nil
	}
	return volumeSource{Name: name, Store: from.Status.Placement.Store, Size: *from.Status.AllocatedSize,
		Content: ContentSource{VolumeID: from.NodeVolumeID()}}, "", nil
}

// readyDetail is ": " and the message of a False Ready condition among conds, or "".
func readyDetail(conds []metav1.Condition) string {
	if c := meta.FindStatusCondition(conds, v1alpha1.ConditionReady); c != nil && c.Status != metav1.ConditionTrue && c.Message != "" {
		return ": " + c.Message
	}
	return ""
}

// pinToSource keeps only the source's Store among the placement candidates: a restore or clone
// goes there or nowhere.
func pinToSource(loads []storeLoad, src *volumeSource) []storeLoad {
	for _, l := range loads {
		if l.Store.Name == src.Store {
			return []storeLoad{l}
		}
	}
	return nil
}

// sourcePlacementMessage says why a restore or clone cannot go on its source's Store, from the
// placer's message about that one Store (none when the Store does not exist).
func sourcePlacementMessage(src *volumeSource, pinned []storeLoad, placerMessage string) string {
	if len(pinned) == 0 {
		return fmt.Sprintf("store %s, which holds its source %s, does not exist", src.Store, src.Name)
	}
	return fmt.Sprintf("the volume must be on store %s, which holds its source %s, and that store cannot take it: %s",
		src.Store, src.Name, placerMessage)
}

// createFailure records the node's refusal to create vol: as SourceTooLarge when the node says
// it is smaller than its source, else as ProvisioningFailed. It returns the reason.
func createFailure(obs *volumeObservation, msg string, err error) string {
	if errors.Is(err, ErrSmallerThanSource) {
		obs.SourceTooLarge = msg
		return v1alpha1.ReasonSourceTooLarge
	}
	obs.CreateFailed = msg
	return v1alpha1.ReasonProvisioningFailed
}

// volumesFromSource maps a Snapshot or Volume event to the Volumes not created yet that are
// made from it, so a restore or clone starts as soon as its source is ready.
func (r *VolumeReconciler) volumesFromSource(kind string) func(context.Context, client.Object) []reconcile.Request {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var list v1alpha1.VolumeList
		key := sourceKey(kind, o.GetNamespace(), o.GetName())
		if err := r.List(ctx, &list, client.MatchingFields{volumeSourceIndex: key}); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "list volumes made from source", "source", key)
			return nil
		}
		var reqs []reconcile.Request
		for i := range list.Items {
			if list.Items[i].Status.AllocatedSize == nil {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
			}
		}
		return reqs
	}
}
