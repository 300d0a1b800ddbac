// Package testenv is the one way Cobalt's tests start a Kubernetes API server: envtest's
// kube-apiserver and etcd, with Cobalt's CRDs installed, a scheme and a client for them, and
// controller-runtime managers that stop with it. Each test package starts one Env, from TestMain
// (Main) or a ginkgo BeforeSuite (Setup with GinkgoT()), and shares it between its tests.
//
// Guarantees:
//   - The binaries are found by package assets: $KUBEBUILDER_ASSETS, else bin/k8s/<version> of
//     this module; when they are missing, Start fails with an error that says to run
//     `make envtest`, before anything is started.
//   - When Start returns, the API server serves every CRD it was given (by default the generated
//     ones in config/crd/bases): each can be listed through Client. A missing CRD path is an
//     error, never an API server without the CRDs.
//   - Scheme holds client-go's built-in types and Cobalt's API (api/v1alpha1).
//   - Client talks to the API server directly, with no cache: what a test reads is what the
//     server holds at that moment.
//   - A manager started by StartManager has synced its cache when StartManager returns. Stop
//     cancels every such manager and waits for it to return before it stops the API server, and
//     reports the error a manager returned.
//   - Stop may be called more than once; the later calls do nothing. An Env holds all its state:
//     the package has no package-level variables, so Envs do not see each other.
package testenv
