// Package assets finds the kube-apiserver, etcd and kubectl binaries that envtest runs, for the
// test suites (through package testenv) and for hack/demo. It uses the standard library only, so
// the demo binary does not link the test scaffolding.
//
// Guarantees:
//   - An explicit directory wins: $KUBEBUILDER_ASSETS when set, never second-guessed.
//   - Otherwise the directory is bin/k8s/<Version> of the module the caller runs in, found by
//     walking up from the working directory to the nearest go.mod; Version is the one
//     `make envtest` builds (ENVTEST_K8S_VERSION in the Makefile, kept equal by a test).
//   - A directory is returned only after kube-apiserver and etcd were found in it as regular,
//     executable files; otherwise the error names what is missing and says to run `make envtest`.
package assets
