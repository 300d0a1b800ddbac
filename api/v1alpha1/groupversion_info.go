// Package v1alpha1 holds Cobalt's custom resource types in the storage.cobalt.io/v1alpha1 API group.
//
// Three kinds make up the API:
//   - StorageCluster (namespaced) says which nodes and devices hold storage and how the storage
//     engine is tuned; the operator runs the node daemon from it.
//   - Store (cluster-scoped, one per node device) is created by the node daemon for each device it
//     considers; the daemon writes its heartbeat and capacity, the operator its health conditions.
//   - Volume (namespaced) asks for space; the operator places it on one Store and the node that
//     hosts that Store creates it.
//
// Invariants enforced by the API server (OpenAPI markers and CEL rules, so a bad object is refused
// with a message instead of being accepted and failing later): sizes are positive, a Volume never
// shrinks, a Store's device and node never change, and a placed Volume never moves to another Store.
//
// +kubebuilder:object:generate=true
// +groupName=storage.cobalt.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the API group and version of every type in this package.
	GroupVersion = schema.GroupVersion{Group: "storage.cobalt.io", Version: "v1alpha1"}

	// SchemeBuilder registers this package's types with a runtime.Scheme.
	// controller-runtime deprecates scheme.Builder so that API packages import less; moving to
	// apimachinery's runtime.SchemeBuilder changes how every type registers, a change of its own.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion} //nolint:staticcheck // see above

	// AddToScheme adds this package's types to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
