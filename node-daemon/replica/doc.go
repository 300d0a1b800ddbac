// Package replica is the node-level data path of replicated volumes: the fenced replica side that
// every node serves (Node, reached over the node API's ReplicaService or, on the coordinator's own
// node, through Local), the client of that stream (Remote), and the Coordinator that the node
// where a volume is staged runs its I/O through, with the dirty-region log (DirtyLog) a later
// resync reads. Step 1 of replication: nothing here is reachable from a Volume's spec yet.
//
// Invariants:
//
// Acknowledgement. A write or trim is acknowledged when every replica that was in sync when it
// started has it durably, except replicas that failed it and whose drop the InSyncRecorder has
// recorded (DropReplica returned nil) before the acknowledgement. If recording a drop fails, the
// write fails; if every in-sync replica fails it, the write fails and no replica is dropped. A
// flush first waits for every write and trim that started before it, then flushes every in-sync
// replica, with the same rule for the ones that fail. Replicas are written in parallel: the local
// one in the caller's goroutine, the remote ones each over its own pipelined stream. A replica
// that does not answer within ReplicaTimeout has failed the operation; the caller's context does
// not cancel the replicas' operations (a caller that gives up would otherwise leave a write on
// some replicas only, with nobody dropped).
//
// Failed writes. A failed write leaves its range undefined, as on a disk, and here the in-sync
// replicas may then differ in it (the write failed on every replica but landed on some, or a drop
// could not be recorded). Such ranges are in the dirty log of every replica that did not confirm
// the write, in-sync ones included; making in-sync replicas agree on them is the resync step's
// job, as is reconciling the writes an old coordinator had in flight when a newer one took over.
//
// Drop rule. A replica leaves the in-sync set only through InSyncRecorder.DropReplica, never
// silently, and never comes back in this step. Reads never drop a replica: they come from the
// local replica when it is in sync, otherwise from the first in-sync remote one, and try the next
// in-sync replica when one fails.
//
// Dirty regions. Before a write or trim returns, its range is marked in the DirtyLog of every
// replica that did not confirm it (out of sync, failed, or not reached because the coordinator
// was fenced), so the regions a returning replica lacks are a subset of its dirty regions. The log
// lives in the coordinator's memory: persisting it is a later step.
//
// Fencing. Every request carries the attachment generation (>= 1). A replica records the highest
// generation it accepted durably in its volume (user attribute GenerationAttr) before it serves a
// request of that generation, and only after every request of an older generation that was running
// has finished; it refuses requests of an older generation with ErrStaleGeneration (gRPC
// FailedPrecondition with the recorded generation). Open claims every replica with a flush, so
// once a coordinator of generation g+1 has opened, no write of generation g is applied on any
// replica it claimed. A coordinator that meets a refusal is fenced: it fails that operation and
// every later one with ErrFenced, and drops nobody.
package replica
