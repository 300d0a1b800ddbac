//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
)

// leftovers lists every Cobalt object still in the cluster after helm uninstall, except the two
// kinds the chart keeps on purpose (keptByDesign).
func leftovers(ctx context.Context) []string {
	var left []string
	lists := map[string]client.ObjectList{
		"StorageCluster": &storagev1alpha1.StorageClusterList{}, "Store": &storagev1alpha1.StoreList{},
		"Volume": &storagev1alpha1.VolumeList{},
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
	}
	for kind, l := range nsLists {
		if err := s.c.List(ctx, l, client.InNamespace(releaseNamespace)); err != nil {
			left = append(left, fmt.Sprintf("list %s: %v", kind, err))
			continue
		}
		for _, o := range mustItems(l) {
			if kind == "ServiceAccount" && o == releaseNamespace+"/default" ||
				kind == "ConfigMap" && o == releaseNamespace+"/kube-root-ca.crt" ||
				kind == "Secret" && o == releaseNamespace+"/cobalt-ca" {
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

// keptByDesign names what helm uninstall leaves on purpose: the CRDs (Helm never deletes CRDs
// from crds/) and the operator's CA Secret (created at run time, not by Helm).
func keptByDesign(ctx context.Context) []string {
	var kept []string
	var crds apiextensionsv1.CustomResourceDefinitionList
	if err := s.c.List(ctx, &crds); err != nil {
		kept = append(kept, "list CRDs: "+err.Error())
	} else {
		for _, c := range crds.Items {
			if c.Spec.Group == storagev1alpha1.GroupVersion.Group {
				kept = append(kept, "CRD "+c.Name)
			}
		}
	}
	var ca corev1.Secret
	if err := s.c.Get(ctx, types.NamespacedName{Namespace: releaseNamespace, Name: "cobalt-ca"}, &ca); err == nil {
		kept = append(kept, "Secret "+releaseNamespace+"/cobalt-ca")
	}
	return kept
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
