package chart

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestPodsPassRestrictedPodSecurity creates (dry run) a Pod from the template of each Deployment
// the chart renders (the operator with its CSI sidecars, the snapshot-controller) in a namespace
// that enforces the "restricted" Pod Security Standard: the API server's PodSecurity admission
// accepts it. A privileged variant of the same Pod is refused, which shows the admission check is
// really on.
func TestPodsPassRestrictedPodSecurity(t *testing.T) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   "psa-restricted",
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest"},
	}}
	if err := server.client.Create(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
	r := mustRender(t, nil)
	for _, tc := range []struct {
		deployment string
		containers int
	}{
		{"cobalt-controller-manager", 5}, // the manager and the four CSI sidecars
		{"cobalt-snapshot-controller", 1},
	} {
		dep := find(t, r.objects, "Deployment", tc.deployment)
		spec := nested(t, dep, "spec", "template", "spec")
		var podSpec corev1.PodSpec
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(spec, &podSpec); err != nil {
			t.Fatal(err)
		}
		podSpec.ServiceAccountName = "" // the ServiceAccount lives in the release namespace, not here
		if len(podSpec.Containers) != tc.containers {
			t.Fatalf("the pod of %s has %d containers, want %d", tc.deployment, len(podSpec.Containers), tc.containers)
		}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: tc.deployment}, Spec: podSpec}
		if err := server.client.Create(t.Context(), pod.DeepCopy(), client.DryRunAll); err != nil {
			t.Fatalf("the pod of %s is refused under the restricted Pod Security Standard: %v", tc.deployment, err)
		}

		// Each container is checked: a sidecar alone breaking the rules gets the pod refused.
		for i := range pod.Spec.Containers {
			privileged := pod.DeepCopy()
			yes := true
			privileged.Spec.Containers[i].SecurityContext.Privileged = &yes
			privileged.Spec.Containers[i].SecurityContext.AllowPrivilegeEscalation = &yes
			err := server.client.Create(t.Context(), privileged, client.DryRunAll)
			if err == nil || !strings.Contains(err.Error(), "violates PodSecurity") {
				t.Fatalf("a pod of %s with container %s privileged was not refused by PodSecurity admission: %v", tc.deployment, pod.Spec.Containers[i].Name, err)
			}
		}
	}
}
