package main

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
)

// cobaltClient returns a Kubernetes client that knows Cobalt's types.
func (o *globalOptions) cobaltClient() (client.Client, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := storagev1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	return o.kubeClient(scheme)
}

// resolveVolume finds the daemon address, store UUID and volume ID of the Volume name in the
// namespace: the Volume's placement names its Store, whose endpoint annotation and UUID say where
// and on which store the volume (identified by the Volume's UID) lives.
func resolveVolume(ctx context.Context, g *globalOptions, name string) (addr, store, id string, err error) {
	c, err := g.cobaltClient()
	if err != nil {
		return "", "", "", err
	}
	var vol storagev1alpha1.Volume
	if err := c.Get(ctx, types.NamespacedName{Namespace: g.namespace, Name: name}, &vol); err != nil {
		return "", "", "", fmt.Errorf("get Volume %s/%s: %w", g.namespace, name, err)
	}
	if vol.Status.Placement == nil || vol.Status.Placement.Store == "" {
		return "", "", "", fmt.Errorf("volume %s/%s is not placed on a Store yet", g.namespace, name)
	}
	var st storagev1alpha1.Store
	if err := c.Get(ctx, types.NamespacedName{Name: vol.Status.Placement.Store}, &st); err != nil {
		return "", "", "", fmt.Errorf("get Store %s of Volume %s: %w", vol.Status.Placement.Store, name, err)
	}
	addr = st.Annotations[storagev1alpha1.AnnotationNodeEndpoint]
	if addr == "" || st.Status.UUID == "" {
		return "", "", "", fmt.Errorf("store %s is not served by a node daemon right now", st.Name)
	}
	return addr, st.Status.UUID, vol.NodeVolumeID(), nil
}
