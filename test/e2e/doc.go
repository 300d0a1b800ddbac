// Package e2e is Cobalt's end-to-end suite against a real single-node Kubernetes cluster: the
// Helm chart installs the operator, a StorageCluster on loop devices runs the node daemon
// DaemonSet, and data goes through Volumes with the cobalt CLI (see the steps in e2e_test.go).
//
// The suite is built only with the e2e build tag and drives the cluster from outside through
// an admin kubeconfig. `make e2e` brings up the cluster (hack/cluster), loads the images and runs
// it; run by hand with
//
//	E2E_KUBECONFIG=... E2E_DIR=... E2E_CLI=bin/e2e/cobalt go test -tags e2e ./test/e2e -v -ginkgo.v
//
// Invariants: the suite touches only loop devices it attached itself (backed by files under
// E2E_DIR) and detaches them whatever the outcome; every wait is bounded and, on timeout, says
// what it last saw; nothing is skipped: a missing prerequisite fails the suite.
package e2e
