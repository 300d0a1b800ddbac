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
// within the grace period; a daemon started on a device that fails with a real EIO (package
// eiodev; every I/O, or writes and flushes only) reporting its Store unused with the reason, not
// crashing, and serving the same store once the device is healed; a device failing with a real
// EIO under a running daemon with two stores, while its Volume is written: the daemon does not
// crash, the other store keeps serving, SIGTERM stops it cleanly, and the healed store mounts
// with every acknowledged write. Every loop device is detached in t.Cleanup.
//
// Replication (replication_*_test.go): four node daemons as processes, each with its own device
// and node name, the operator's Store and Volume reconcilers with replication enabled, and a
// replicated Volume's coordinator (package replvol, as the CSI node plugin runs it) in the test
// process, reaching every copy over the node API with a peer certificate, attached through the
// CSI controller's ControllerPublishVolume (its generation), under a continuous
// verified write stream (every acknowledged write must read back, through the coordinator and
// from each copy, and the copies must compare equal). Faults: SIGKILL of a copy's daemon (the copy
// is replaced on the fourth Store after the replacement delay and rebuilt); SIGSTOP of a copy's
// daemon resumed within the delay (resynced from its dirty regions only); a takeover at the next
// generation with the old coordinator paused (its writes refused as fenced, copies equal), and
// takeovers while the old coordinator's writes are in flight (COBALT_REPL_TAKEOVERS rounds: those
// unacknowledged writes may land or not, but the same on every copy once the new coordinator's
// Open reconciled them).
//
// The replication soak (replication_soak_test.go, TestReplicationSoak) runs those faults, and bit
// rot, and device failure, at random points of one continuous verified write stream: each kind
// once per eight faults in random order (eight in `make test`, six without root, seven without /dev/fuse; `make replica-soak` runs COBALT_REPL_SOAK_FAULTS of them
// with seed COBALT_REPL_SOAK_SEED, printed so that a run's faults, victims and writes can be
// replayed, and COBALT_REPL_SOAK_KINDS to run some kinds only): SIGKILL of a copy's daemon restarted at once (resynced), SIGSTOP for a random time
// under or over the replica timeout, SIGKILL of one left dead (replaced on the spare Store,
// rebuilt), a takeover by a coordinator on another node while the old one writes (its writes in
// flight and after it resumes refused as fenced; the latter go to a model of their own, so one
// that landed is found), the same from a coordinator process (the test binary run again, switched
// by TestMain on COBALT_IT_COORDINATOR; it reports each acknowledged write on stdout) stopped
// with SIGSTOP while the attachment moves on and then resumed, and bit rot (the daemon stopped,
// one acknowledged block checked through the storage engine's own read of the device, then
// inverted wherever it lies outside the label and metadata region; read back right through the
// coordinator, repaired by the coordinator's scheduled scrub), and a device failing under its
// running daemon (its loop device shrunk to nothing: writes ENOSPC, reads short, through the
// daemon's open descriptor; the copy is dropped, the Store turns not Ready saying the device
// failed, the copy is replaced on the spare Store and rebuilt, and the daemon is restarted on a
// blank disk at the same path; a daemon that crashes instead fails the test, is counted in the
// table and is started again on the dead device, which it must report unused; as root only, the devices being files
// otherwise), and a device failing with a real EIO under its running daemon (device-eio: the
// devices of some nodes, all when device-fail does not run and else two of the four, are
// eiodev loop devices served by the test process through FUSE; at the fault the device's switch
// fails every I/O, or writes and flushes only; what must follow is device-fail's, the device must
// have failed some of the daemon's I/O, the daemon restarted on a blank device at the same path;
// each such device is closed at cleanup after the daemons on it are killed, within a bound, its
// FUSE connection aborted and its mount detached lazily if it does not close). After each fault
// the soak waits
// (bounded; on failure it logs the seed, the faults so far, the Volume's status and the
// coordinator's view of the copies) until the three copies are in sync, then verifies every
// acknowledged write through the coordinator and on every copy and compares the copies; it ends
// with the fault table (fault, count, acknowledged writes verified, lost, rebuild, resync,
// compared and scrub-repaired bytes).
package integration
