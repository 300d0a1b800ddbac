// Package integration holds the node daemon's end-to-end tests: the daemon (in-process, and as
// a subprocess built from cmd/node-daemon) with the real storage engine on loop devices (sparse
// files when not running as root), against an envtest API server, together with the operator's
// Store and Volume reconcilers and the real mTLS node client (controllers/nodeapi over
// node-daemon/client). It is the one place the daemon and the operator are linked together, in
// test code only: the package has no other code, and test/layers checks the non-test imports.
//
// The tests cover: Store objects with capacity; a skipped device and its reason; a Volume CR that
// becomes Ready and whose data reads back, also after a daemon restart; kill -9 during writes
// losing no acknowledged write (restart, fsck clean, data verified); a client without a
// certificate refused; malformed requests getting clean errors; SIGTERM shutting down cleanly
// within the grace period. Every loop device is detached in t.Cleanup.
package integration
