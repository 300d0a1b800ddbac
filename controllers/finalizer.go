package controllers

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

// ensureFinalizer adds finalizer to obj and writes nothing when obj has it already.
//
// The write is a merge patch with an optimistic lock, so it is refused when obj is stale instead
// of dropping a finalizer another writer added meanwhile. The patch is sent from a copy and only
// the finalizers and the resourceVersion the server answered are copied back: the rest of obj
// (its status, which the reconcile is about to compute) stays as it was read.
func ensureFinalizer(ctx context.Context, c client.Client, obj client.Object, finalizer string) error {
	if controllerutil.ContainsFinalizer(obj, finalizer) {
		return nil
	}
	err := patchFinalizers(ctx, c, obj, func(cp client.Object) { controllerutil.AddFinalizer(cp, finalizer) })
	if err != nil {
		return fmt.Errorf("add finalizer %s to %s: %w", finalizer, describe(c, obj), err)
	}
	return nil
}

// removeFinalizer removes finalizer from obj and writes nothing when obj does not have it. Like
// ensureFinalizer it patches with an optimistic lock; an object that is gone already is not an
// error.
func removeFinalizer(ctx context.Context, c client.Client, obj client.Object, finalizer string) error {
	if !controllerutil.ContainsFinalizer(obj, finalizer) {
		return nil
	}
	err := patchFinalizers(ctx, c, obj, func(cp client.Object) { controllerutil.RemoveFinalizer(cp, finalizer) })
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove finalizer %s of %s: %w", finalizer, describe(c, obj), err)
	}
	return nil
}

// patchFinalizers applies change to a copy of obj, patches the difference with an optimistic
// lock and copies the resulting finalizers and resourceVersion back into obj.
func patchFinalizers(ctx context.Context, c client.Client, obj client.Object, change func(client.Object)) error {
	cp, ok := obj.DeepCopyObject().(client.Object)
	if !ok {
		return fmt.Errorf("copy of %T is not a client.Object", obj)
	}
	change(cp)
	if err := c.Patch(ctx, cp, client.MergeFromWithOptions(obj, client.MergeFromWithOptimisticLock{})); err != nil {
		return err
	}
	obj.SetFinalizers(cp.GetFinalizers())
	obj.SetResourceVersion(cp.GetResourceVersion())
	return nil
}

// describe names obj for an error message: its kind and its namespace/name.
func describe(c client.Client, obj client.Object) string {
	key := obj.GetName()
	if ns := obj.GetNamespace(); ns != "" {
		key = ns + "/" + key
	}
	gvk, err := apiutil.GVKForObject(obj, c.Scheme())
	if err != nil {
		return fmt.Sprintf("%T %s", obj, key)
	}
	return gvk.Kind + " " + key
}
