// Package chart tests the Helm chart in charts/cobalt as a user meets it: `helm lint`, `helm
// template` through Helm's Go SDK, values refused by values.schema.json with their messages, every
// rendered object server-side dry-run applied to a real kube-apiserver (envtest), and the chart
// compared with the kustomize install in config/default.
//
// Invariants the tests hold the chart to:
//   - The chart's CRDs (charts/cobalt/crds) and its copy of the operator's role
//     (charts/cobalt/files/manager-role.yaml) are byte-for-byte what controller-gen wrote to config/;
//     `make manifests` syncs them.
//   - The release "cobalt" renders the same kinds, names and RBAC rules as `kubectl kustomize
//     config/default`, modulo Helm's labels and the Namespace object Helm does not own.
//   - No RBAC rule uses a wildcard, and the operator's pod meets the "restricted" Pod Security
//     Standard.
//
// The package holds no production code: it only has this doc and tests.
package chart
