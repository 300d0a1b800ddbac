// Package layers tests that Cobalt's packages import each other only in the directions the
// architecture allows. It reads the import graph with `go list -deps -json` (non-test imports:
// what a binary links) and fails with the import chain that breaks a rule.
//
// The rules (the whiteboard, enforced):
//   - storage-engine/... imports nothing from Kubernetes (k8s.io, sigs.k8s.io) and nothing from
//     the rest of the module: the engine is a library that knows no node, API or cluster.
//   - node-daemon/... and cmd/node-daemon never import controllers/... or csi/controller: the
//     node daemon does not link the operator's reconcilers or the CSI controller service.
//   - node-daemon/client is a leaf of the node API: from the module it imports only
//     node-daemon/proto and node-daemon/transport (the API's TLS credentials), and nothing from
//     Kubernetes, so everything that talks to a daemon (the operator, the CLI, the daemon's own
//     health probe) links the gRPC client and nothing more.
//   - cmd/manager and controllers/... never import node-daemon/server or storage-engine/...: the
//     operator talks to nodes through the node API, never by linking the node's side of it.
//   - cmd/cobalt (the CLI) does not import controllers/...: it reads the API types and talks to
//     daemons through node-daemon/client.
//
// Test-only imports are not checked: node-daemon/integration assembles the operator and the
// daemon in one test binary on purpose.
//
// The package holds no production code: it only has this doc and tests.
package layers
