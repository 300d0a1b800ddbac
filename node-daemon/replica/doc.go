// Package replica is the node-level data path of replicated volumes: the fenced replica side that
// every node serves (Node, reached over the node API's ReplicaService or, on the coordinator's own
// node, through Local), the client of that stream (Remote), and the Coordinator that the node
// where a volume is staged runs its I/O through, with the dirty-region log (DirtyLog) a later
// resync reads, and rebuild, resync and scrub (Coordinator.Rebuild, Resync, Scrub, Repair).
// Steps 1 and 2 of replication: nothing here is reachable from a Volume's spec yet.
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
// the write, in-sync ones included. The writes an old coordinator had in flight when a newer one
// took over (or when its node restarted) can likewise have landed on some in-sync replicas only,
// and are in no dirty log. Both lie in the write intent of the replicas they landed on (see Write
// intent). This package does not reconcile either by itself: its user makes the in-sync replicas
// agree before a new coordinator serves I/O (package replvol does at every Open: a comparison of
// the intent regions, IntentExtents and Verify, or of everything, Scrub, when the intent is not
// known; Repair of each differing block from one replica; Verify), and a later scrub finds any
// difference left.
//
// Write intent. Every replica (Node, so Local and Remote alike) keeps, per volume, a write-intent
// log of IntentRegionSize regions in user attribute IntentAttr of its volume (versioned, CRC-32C
// checksummed, through the fence): before it applies a write or trim it marks the regions the
// range touches, and the mark is durable before the write is applied (the first mark of a region
// saves the whole log, a region already saved costs nothing; if the save fails the write or trim
// fails and is not applied, and the regions stay marked in memory). So a write that landed on a
// replica after its log started, acknowledged or not, lies in that replica's intent until it is
// cleared. The invariant the logs keep (coverage): wherever two in-sync replicas that both keep a
// log may differ, the log of one of them marks the region; so the union of the logs of whichever
// replicas are in sync (IntentExtents) holds every place where they may differ. A coordinator
// clears a region on the in-sync replicas (ClearIdleIntent) only when every write and trim of the
// region it made ended before a flush that every in-sync replica acknowledged, none of them
// failed, the region has been idle for Config.IntentClearInterval, and under the region's lock
// held exclusively (no write of it runs meanwhile); writes start that in the background, lazily,
// so hot regions stay marked and cost nothing. ClearAllIntent, called once a reconcile found the
// in-sync replicas equal, flushes with every write held off and clears everything except the
// regions where a write of this coordinator failed (the replicas may differ there until a
// reconcile: they are kept, and marked on a replica whose log starts then); it vouches for those
// replicas (they agree with the others outside this coordinator's regions) until they leave the
// in-sync set or are removed. Close does the same on the replicas vouched for, and on the other
// in-sync ones (resynced since, whose older marks may cover writes their sync did not compare, or
// rebuilt from a replica not vouched for) clears only this coordinator's regions where no write
// failed. Clearing is never early, and may be late (the log is a superset). A replica that is not
// in sync keeps its marks.
//
// A log starts only where coverage holds at that moment: by ClearAllIntent (the replicas compared
// equal), or when a Rebuild promotes its target. The target's log starts at its promotion, after
// the copy (whose writes would mark every copied region) and under the gate (no write or trim
// runs: every one that failed is known, and none is applied to the target unmarked afterwards),
// holding the source's intent regions (read after the comparison; the whole volume when the
// source keeps no log or cannot report it) and the regions where a write of this coordinator
// failed, in place of any log the target had (when that cannot be saved the rebuild fails and
// the target stays out of sync). That is enough: the rebuild compared every written
// extent of source and target, and every later write of a compared region landed on both or
// failed, so at the promotion the target differs from the source only in failed regions, and from
// another in-sync replica Q only there or where the source differs from Q, which the source's log
// (now also the target's) or Q's marks; a source region cleared after it was read was cleared
// because every in-sync replica had every write of it, and marks added to the source after the
// read come from writes the target had too, or that failed. The target is vouched for exactly when its source is
// (it agrees with the others wherever the source does). A Resync target's log is left as it is:
// its sync compared only its dirty regions, so a target that keeps no log does not start one (it
// may differ elsewhere, unmarked), and one that keeps a log keeps its marks. A replica without the
// attribute (written by older code, or never reconciled nor rebuilt) or with a corrupt one marks
// nothing and reports that it keeps no log (Intent.Tracking false), and then IntentExtents fails
// with ErrNoIntent so that its user compares every written extent.
//
// Incarnations. A volume deleted and created again under the same ID (a copy retired and a new
// one placed on the same Store) is another incarnation (volume.Manager.Incarnation) and holds none
// of the old one's data. Local and Remote bind to the incarnation they first reach and send it
// with every request after; Node refuses a request meant for another incarnation (ErrReplaced)
// atomically with the request (a volume is deleted through Node.Delete, which waits for the
// requests admitted on it), and forgets the generation and write-intent log it kept of an old
// incarnation. So a coordinator never writes or reads a new copy as if it were the old one (an
// in-sync old copy is dropped instead), and Resync refuses a target that is not the incarnation
// its member reached (its dirty regions say nothing of what a new copy lacks): the caller
// removes the member and rebuilds. A member that never reached its copy (unreachable since Open)
// cannot be checked; its copy is trusted to be the one the volume's status named.
//
// Drop rule. A replica leaves the in-sync set only through InSyncRecorder.DropReplica, never
// silently, and comes back only through a Rebuild or Resync that ended with equal copies. Reads never drop a replica: they come from the
// local replica when it is in sync, otherwise from the first in-sync remote one, and try the next
// in-sync replica when one fails.
//
// Dirty regions. Before a write or trim returns, its range is marked in the DirtyLog of every
// replica that did not confirm it (out of sync, failed, or not reached because the coordinator
// was fenced), so the regions a returning replica lacks are a subset of its dirty regions. With a
// DirtyStore (Config.DirtyStore; Local.DirtyStore keeps the log in user attribute DirtyLogAttr of
// the local replica's volume, through the node's fence) the marks are durable before that return:
// the first mark of a region for a replica saves the whole log (versioned, CRC-32C checksummed)
// and a region already saved for it costs nothing. If the save fails the write or trim fails
// (nobody is dropped for it and it is not acknowledged); the regions stay marked in memory and
// their next mark saves again. Except when the replica whose volume keeps the store
// (Config.DirtyReplica) did not confirm that operation (it failed it, or is not in sync): its
// store is then taken to have failed with it, and the log is detached (lives in memory from then
// on, as below) and the operation goes on, the failed replicas dropped; otherwise one failing
// disk on the coordinator's node would stop the volume while its other replicas work. The saved
// log is then stale: after a restart of the coordinator only a Rebuild is safe for the replicas
// it marked since (their drops are recorded; replvol rebuilds every copy that is not in sync when
// it opens a volume, and covers the failed writes of copies still in sync with their write
// intent, see Failed writes). Clearing a resynced replica's regions is saved lazily, with the
// next save, so the store holds a superset of the needed marks, never less. Open loads the saved
// log (a corrupt one fails Open), so a coordinator that restarted, of any generation, still
// resyncs a returning replica from its dirty regions; without a DirtyStore the log lives in memory
// only and after a restart only a Rebuild is safe. When the replica that holds the store leaves
// (retired, or replaced by a new copy), its user detaches the log (DirtyLog.Detach): it lives in
// memory from then on, so writes that must mark a region do not fail on a store that is gone.
//
// Rebuild and resync. A target (a new, empty replica for Rebuild; a returning one for Resync)
// joins as catching up, once every write and trim in flight has finished: from then on every
// write, trim and flush goes to it too, but it serves no reads and does not count for the
// acknowledgement; if it fails one, the rebuild fails (nobody is dropped: it was never in sync).
// Then the ranges to copy are listed: for Rebuild the written extents (stripe objects that
// exist, up to their size) of the source and the target, for Resync the target's dirty regions. Every write that started
// before the join is in that list. Copy invariant: each chunk spans at most
// SyncOptions.CopyRegions consecutive dirty-log regions and is copied under the exclusive lock of
// each of them (taken in ascending order, as writes take theirs shared), which every write and
// trim of a region holds shared while it runs on the replicas; so the copy reads the source and
// writes the target with no write of those regions in between, and a write acknowledged after the
// chunk was read is never overwritten by the copy (it waits, and then goes to both). The parts of
// a chunk that are all zeros in their region are trimmed on the target instead of written.
// Comparison: before a chunk's region locks are released, what the target stored is re-read
// from its device on its node and compared with the bytes just read from the source, which the
// source still holds (no write of those regions can run in between): by the target itself, byte
// for byte, in the request that writes them when it is a WriteVerifier (WriteVerify reports the
// blocks that differ); otherwise, and for the parts trimmed or whose write the target could not
// read back, by the per-block CRC-32C the target computes (Syncer.Checksum) against the CRC-32C
// of the source's bytes. Several chunks are copied at once
// (SyncOptions.Parallelism). After the
// copy, the two copies are compared by per-block CRC-32C computed on each replica's node, region
// by region under the same locks, over what the copy did not compare: whatever either holds
// beyond the listed ranges (Rebuild: writes made it meanwhile, on both), and the listed ranges
// in regions dirty for the source (a write since the listing that the source did not confirm may
// have landed on the target only). A later write of a compared region lands on both or fails the
// rebuild (the target failed it) or is one of those. Only when every block compared equal and the
// target answered a flush (a resync with nothing to copy must still reach it) is the target put
// in sync (again once no write is in flight) and its dirty regions forgotten; a rebuilt target
// starts its write-intent log then (see Write intent). Copy
// and comparison are throttled by a Limiter (the bytes copied plus the bytes compared) and report
// Progress (PhaseCopy includes each chunk's comparison). The reads of copies, comparisons and
// scrubs do not go through the engine's data cache (Local's NoCacheReader and NoCacheReaderInto,
// volume.Manager's ReadNoCache and ReadNoCacheInto, over the stream ReplicaRead.no_cache; a
// verified write reads its range back the same way), so they neither push out a volume's hot
// data nor hide a rotten block behind a cached copy.
//
// Scrub compares every in-sync replica by per-block CRC-32C computed on each replica's node
// (Syncer.Checksum), region by region under the region locks, and reports the blocks that differ, and the
// blocks a replica cannot read because its engine found them corrupt (the deep read: the engine
// verifies its checksums on every read; ErrCorrupt locally, DataLoss over the stream): such a
// chunk is checksummed again block by block on that replica so that only the rotten blocks are
// reported, and any other failure fails the scrub. Mismatch.Majority tells the good copy (a
// replica that cannot read a block is bad; among the others, a strict majority) or that it cannot
// be told. Repair copies ranges from a replica known good onto the others under the region locks;
// Verify compares given ranges again.
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
