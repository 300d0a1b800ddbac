package controllers

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// patchStatus writes the difference between before and obj as one merge patch of the status
// subresource, and writes nothing when there is none. A merge patch carries only the changed
// fields, so what another writer (the node daemon's heartbeat) put in status is left alone. An
// object that is already gone is not an error.
//
// The patch never carries a resourceVersion: when a phase patched obj's metadata (a finalizer)
// obj has a newer one than before, and a patch carrying it would be refused with a conflict
// whenever another writer changed the object since.
func patchStatus(ctx context.Context, c client.Client, before, obj client.Object) error {
	return patchStatusWith(ctx, c, before, obj, false)
}

// patchStatusLocked is patchStatus with optimistic locking: the patch carries obj's
// resourceVersion, so the API server refuses it with a Conflict when another writer changed the
// object after the reconcile read it. The Volume reconciler writes status this way because the
// node serving a replicated volume also writes status.replicas (a merge patch replaces that
// whole list): a status computed from an older copy must never undo what the node recorded.
// A Conflict is not an error here: stale reports it, and the caller must reconcile the object
// again (a status-only change of the object does not pass the Volume watch's predicates, so no
// event would bring it back).
func patchStatusLocked(ctx context.Context, c client.Client, before, obj client.Object) (stale bool, err error) {
	err = patchStatusWith(ctx, c, before, obj, true)
	if apierrors.IsConflict(err) {
		log.FromContext(ctx).V(1).Info("status changed by another writer since it was read; it is computed again", "object", client.ObjectKeyFromObject(obj))
		return true, nil
	}
	return false, err
}

func patchStatusWith(ctx context.Context, c client.Client, before, obj client.Object, lock bool) error {
	if before.GetResourceVersion() != obj.GetResourceVersion() {
		b, ok := before.DeepCopyObject().(client.Object)
		if !ok {
			return fmt.Errorf("copy %s for its status patch", client.ObjectKeyFromObject(before))
		}
		b.SetResourceVersion(obj.GetResourceVersion())
		before = b
	}
	p := client.MergeFrom(before)
	if lock {
		p = client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})
	}
	data, err := p.Data(obj)
	if err != nil {
		return fmt.Errorf("compute status patch of %s: %w", client.ObjectKeyFromObject(obj), err)
	}
	if string(data) == "{}" {
		return nil
	}
	if err := c.Status().Patch(ctx, obj, client.RawPatch(p.Type(), data)); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("patch status of %s: %w", client.ObjectKeyFromObject(obj), err)
	}
	return nil
}
