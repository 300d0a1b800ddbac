//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
)

// leftovers lists every Cobalt object still in the cluster after helm uninstall, except the CRDs,
// which are kept on purpose (keptCRDs).
func leftovers(ctx context.Context) []string {
	var left []string
	lists := map[string]client.ObjectList{
		"StorageCluster": &storagev1alpha1.StorageClusterList{}, "Store": &storagev1alpha1.StoreList{},
		"Volume": &storagev1alpha1.VolumeList{}, "Snapshot": &storagev1alpha1.SnapshotList{},
		// The snapshot.storage.k8s.io objects: the suite's VolumeSnapshots and their contents,
		// and the chart's VolumeSnapshotClass.
		"VolumeSnapshot": newList(volumeSnapshotGVK), "VolumeSnapshotContent": newList(volumeSnapshotContentGVK),
		"VolumeSnapshotClass": newList(volumeSnapshotClassGVK),
	}
	for kind, l := range lists {
		if err := s.c.List(ctx, l); err != nil {
			left = append(left, fmt.Sprintf("list %s: %v", kind, err))
			continue
		}
		for _, o := range mustItems(l) {
			left = append(left, kind+" "+o)
		}
	}
	nsLists := map[string]client.ObjectList{
		"Deployment": &appsv1.DeploymentList{}, "DaemonSet": &appsv1.DaemonSetList{}, "Pod": &corev1.PodList{},
		"ServiceAccount": &corev1.ServiceAccountList{}, "Service": &corev1.ServiceList{}, "Secret": &corev1.SecretList{},
		"ConfigMap": &corev1.ConfigMapList{}, "Role": &rbacv1.RoleList{}, "RoleBinding": &rbacv1.RoleBindingList{},
		// The Leases of the operator and its CSI sidecars (owned by its ServiceAccount like its
		// CA Secret) and the snapshot-controller's (rendered by the chart).
		"Lease": &coordinationv1.LeaseList{},
	}
	for kind, l := range nsLists {
		if err := s.c.List(ctx, l, client.InNamespace(releaseNamespace)); err != nil {
			left = append(left, fmt.Sprintf("list %s: %v", kind, err))
			continue
		}
		for _, o := range mustItems(l) {
			// What Kubernetes itself puts in every namespace. The operator's CA Secret and Lease
			// are not excused: they are owned by its ServiceAccount, so they go with the release.
			if kind == "ServiceAccount" && o == releaseNamespace+"/default" ||
				kind == "ConfigMap" && o == releaseNamespace+"/kube-root-ca.crt" {
				continue
			}
			left = append(left, kind+" "+o)
		}
	}
	for kind, l := range map[string]client.ObjectList{"ClusterRole": &rbacv1.ClusterRoleList{}, "ClusterRoleBinding": &rbacv1.ClusterRoleBindingList{}} {
		if err := s.c.List(ctx, l); err != nil {
			left = append(left, fmt.Sprintf("list %s: %v", kind, err))
			continue
		}
		for _, o := range mustItems(l) {
			if strings.Contains(o, "cobalt") {
				left = append(left, kind+" "+o)
			}
		}
	}
	return left
}

// keptCRDs are the only Cobalt objects helm uninstall leaves, on purpose: the CRDs. Helm never
// deletes what a chart ships in crds/, and that protects data: deleting a CRD deletes every object
// of its kind at once, finalizers or not, so a mistaken uninstall would drop every Volume and
// Store record while the data is still on the devices. Removing them is the administrator's call
// once no Cobalt object is left (`kubectl delete -f charts/cobalt/crds`).
var keptCRDs = []string{"snapshots.storage.cobalt.io", "storageclusters.storage.cobalt.io", "stores.storage.cobalt.io", "volumes.storage.cobalt.io"}

// cobaltCRDs lists the CRDs of Cobalt's API group in the cluster.
func cobaltCRDs(ctx context.Context) ([]string, error) {
	var crds apiextensionsv1.CustomResourceDefinitionList
	if err := s.c.List(ctx, &crds); err != nil {
		return nil, fmt.Errorf("list CRDs: %w", err)
	}
	var names []string
	for _, c := range crds.Items {
		if c.Spec.Group == storagev1alpha1.GroupVersion.Group {
			names = append(names, c.Name)
		}
	}
	return names, nil
}

// mustItems returns namespace/name (or name) of every item of a typed list.
func mustItems(l client.ObjectList) []string {
	objs, err := meta.ExtractList(l)
	if err != nil {
		return []string{"extract list: " + err.Error()}
	}
	out := make([]string, 0, len(objs))
	for _, o := range objs {
		m, err := meta.Accessor(o)
		if err != nil {
			continue
		}
		if m.GetNamespace() != "" {
			out = append(out, m.GetNamespace()+"/"+m.GetName())
		} else {
			out = append(out, m.GetName())
		}
	}
	return out
}
