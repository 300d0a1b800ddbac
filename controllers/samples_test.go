package controllers

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
)

// decodeObjects splits a multi-document YAML stream into objects.
func decodeObjects(data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, err
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}

// ensureNamespace creates namespace name unless it exists.
func ensureNamespace(ctx context.Context, name string) {
	GinkgoHelper()
	err := k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if !apierrors.IsAlreadyExists(err) {
		Expect(err).NotTo(HaveOccurred())
	}
}

// dryRunApply server-side applies obj with dryRun=All: the API server validates and defaults it
// as for a real apply but stores nothing.
func dryRunApply(ctx context.Context, obj *unstructured.Unstructured) error {
	return k8sClient.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj),
		client.DryRunAll, client.FieldOwner("samples-test"), client.ForceOwnership)
}

var _ = Describe("Shipped manifests", func() {
	It("accepts every config/samples file by server-side dry-run", func(ctx context.Context) {
		files, err := filepath.Glob(filepath.Join("..", "config", "samples", "*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		var checked int
		for _, f := range files {
			if filepath.Base(f) == "kustomization.yaml" {
				continue
			}
			data, err := os.ReadFile(f)
			Expect(err).NotTo(HaveOccurred())
			objs, err := decodeObjects(data)
			Expect(err).NotTo(HaveOccurred(), "decode %s", f)
			Expect(objs).NotTo(BeEmpty(), "%s holds no object", f)
			for _, o := range objs {
				if ns := o.GetNamespace(); ns != "" {
					ensureNamespace(ctx, ns)
				}
				Expect(dryRunApply(ctx, o)).To(Succeed(), "sample %s (%s %s) refused", f, o.GetKind(), o.GetName())
				GinkgoWriter.Printf("DRY-RUN OK: %s %s/%s\n", filepath.Base(f), o.GetKind(), o.GetName())
				checked++
			}
		}
		Expect(checked).To(BeNumerically(">=", 4), "expected a sample of every kind")
	})

	It("builds config/default with kustomize and the API server accepts all of it by dry-run", func(ctx context.Context) {
		kubectl := filepath.Join(testEnv.AssetsDir, "kubectl")
		_, err := os.Stat(kubectl)
		Expect(err).NotTo(HaveOccurred(), "no kubectl in %s: run `make envtest`", testEnv.AssetsDir)
		out, err := exec.CommandContext(ctx, kubectl, "kustomize", filepath.Join("..", "config", "default")).Output()
		Expect(err).NotTo(HaveOccurred(), "kubectl kustomize config/default")
		objs, err := decodeObjects(out)
		Expect(err).NotTo(HaveOccurred())
		// config/default also ships the snapshot.storage.k8s.io CRDs, which this API server does
		// not have (it serves only Cobalt's): a dry run of a CRD does not serve its kind, so they
		// are created for real (and removed afterwards) before objects of their kinds are checked.
		var snapshotGroup int
		for _, o := range objs {
			group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
			if o.GetKind() != "CustomResourceDefinition" || group == storagev1alpha1.GroupVersion.Group {
				continue
			}
			Expect(group).To(Equal("snapshot.storage.k8s.io"), "config/default ships CRD %s", o.GetName())
			snapshotGroup++
			crd := o.DeepCopy()
			if err := k8sClient.Create(ctx, crd); !apierrors.IsAlreadyExists(err) {
				Expect(err).NotTo(HaveOccurred(), "create CRD %s", o.GetName())
				DeferCleanup(func(ctx context.Context) { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, crd))).To(Succeed()) })
			}
		}
		Expect(snapshotGroup).To(Equal(3), "VolumeSnapshot, VolumeSnapshotContent and VolumeSnapshotClass")
		kinds := map[string]int{}
		for _, o := range objs {
			kinds[o.GetKind()]++
			if o.GetKind() == "Namespace" {
				ensureNamespace(ctx, o.GetName())
				continue
			}
			// A CRD created just now is served once it is established: retry until then.
			Eventually(func() error { return dryRunApply(ctx, o) }).Should(Succeed(), "config/default: %s %s refused", o.GetKind(), o.GetName())
		}
		Expect(kinds).To(HaveKeyWithValue("CustomResourceDefinition", 7), "StorageCluster, Store, Volume, Snapshot and the three snapshot.storage.k8s.io ones")
		// The manager and the snapshot-controller.
		Expect(kinds).To(HaveKeyWithValue("Deployment", 2))
		// The manager's, csi-provisioner's, csi-attacher's, csi-resizer's, csi-snapshotter's and the
		// snapshot-controller's.
		Expect(kinds).To(HaveKeyWithValue("ClusterRole", 6))
		Expect(kinds).To(HaveKeyWithValue("CSIDriver", 1))
		Expect(kinds).To(HaveKeyWithValue("StorageClass", 2))
		Expect(kinds).To(HaveKeyWithValue("VolumeSnapshotClass", 1))
		GinkgoWriter.Printf("DRY-RUN OK: config/default %v\n", kinds)
	})
})
