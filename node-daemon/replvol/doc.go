// Package replvol serves replicated Volumes on the node where they are staged: it implements
// csinode.ReplicatedVolumes over the Kubernetes API (the Volume's copies in status.replicas, the
// node endpoints of their Stores) and the node API (package replica's Coordinator, its Local and
// Remote replicas), records every change of a copy's state in the Volume's status, and runs a
// sync loop per open volume that resyncs or rebuilds the copies that are catching up.
//
// Invariants:
//
// One coordinator per volume per node. Open refuses a volume already open (or being opened) on
// this node (ErrAlreadyOpen): two coordinators would share the generation and the dirty log.
//
// Copies agree before I/O. A coordinator that is gone (a takeover at a newer generation, or this
// node restarting at the same one) may have left unacknowledged writes on some in-sync copies
// only. Each copy marks a region in its durable write-intent log before it applies a write there,
// and a region is cleared only once every in-sync copy has every write of it (package replica,
// "Write intent"), so such writes lie in the union of the in-sync copies' intent. Every Open,
// after the claim and before it returns (no read or write runs yet, no sync or scrub either),
// reconciles the in-sync copies: a comparison of that union (or, when a copy keeps no log, being
// written by older code or its log being corrupt, or cannot report it, of every extent any of
// them holds), each differing block repaired from the copy a strict majority agrees with, else
// from the first in-sync copy (the local one first) that read it (a copy that cannot read a block
// is bad), and the repaired blocks compared again. The run is recorded like a scheduled scrub
// (ConditionScrubbed, "reconcile at open over the write intent (N regions, X MiB)" or "over every
// written extent", and the counters); if it fails (copies not compared, a repair failed, blocks
// still differ) Open fails and is retried. Once the copies agree their intent is cleared (and a
// copy without a log starts one), and Close clears it again after its final flush, so the next
// Open compares only the regions written since and not cleared (idle regions are cleared while
// the volume is open). It is not throttled: it reads the compared bytes of every in-sync copy on
// its own node (only checksums cross the network) while the volume waits; blocks no copy can read
// are left alone (every copy fails them alike). Bit rot outside the intent is the scheduled
// scrub's to find.
//
// Names. A copy is named by its Store (status.replicas is a map keyed by store), both in the
// Coordinator and in the Volume's status; its volume on that Store is the Volume's UID.
//
// Status InSync means in the coordinator's in-sync set. Open makes a member of every copy whose
// status says InSync, and only of those: a copy that cannot be reached (no Store, no endpoint, a
// failed dial) is a member that fails every operation, so the coordinator's claim drops it
// through the InSyncRecorder before Open returns. A copy whose status says InSync but that is not
// a member (made InSync by the operator after Open) is marked CatchingUp by the sync loop and
// rebuilt. The node writes InSync only for a copy the coordinator holds in sync: after a Rebuild
// or Resync that ended with equal copies, or for a copy the operator marked CatchingUp while every
// write since Open reached it (the coordinator acknowledges a write only once every in-sync
// member has it).
//
// Drops are recorded before acknowledgement. DropReplica writes CatchingUp (with why and when)
// into status.replicas with an optimistic-lock update, retried on Conflict from a fresh read, and
// returns nil only once the API server has it (or the status already shows the copy not in sync).
// It refuses, so the write that needed it fails, when the Volume is gone, has another UID, or is
// attached at a newer generation (fenced). It never drops silently.
//
// Resync only from a complete dirty log. A copy is resynced (only its dirty regions copied) only
// when it was in the coordinator's in-sync set during this Open (a member at Open, or promoted
// since): from then on the coordinator marked every write it missed. Any other catching-up copy
// (CatchingUp at Open, a replacement, one whose rebuild failed) is rebuilt (every written extent
// copied), because a dirty log kept on this node may miss writes another coordinator made.
//
// Copies gone. A copy whose entry leaves status.replicas (retired: replaced, or moved away) is
// forgotten at the next pass of the sync loop: the coordinator removes it (replica.Coordinator.
// Remove: no more I/O, no reads), and a copy placed later on the same Store is a new one, rebuilt
// in full, never resynced from the old copy's dirty regions. (The operator retires a copy long
// before it places another on the same Store: a replacement follows a loss of at least its
// replacement delay; a pass of the loop that missed the gap would take the new copy for the old.)
//
// Copies leaving. A status entry whose Store is in neither spec.storeName nor
// spec.replicaStoreNames is a copy the operator moves away: it stays written while it is in sync
// and is never resynced or rebuilt. Lost and Pending copies get no I/O and are never synced.
//
// Scrub. With a ScrubInterval, each open volume is scrubbed one interval after Open (plus up to a
// tenth, at random) and then one interval after each scrub that ran; a scrub is only started when
// every copy the spec places is InSync in the status and in the coordinator's in-sync set and no
// sync runs, else it is tried again every SyncInterval. The sync loop cancels a running scrub
// before it resyncs or rebuilds a copy (scrubMu keeps the two apart), and Close stops it. A scrub
// compares every in-sync copy by checksums computed on each copy's node (replica.Coordinator.Scrub:
// a deep read, the engines verify their checksums), throttled by the Limiter. For each block that
// differs or that a copy's engine found corrupt, the good copy is: not one that could not read it;
// among those that read it, the one a strict majority agrees with. Blocks whose good copy is known
// are repaired from it onto the bad copies (replica.Coordinator.Repair, under the region locks)
// and compared again (Verify); blocks two copies read without error but disagree on, with no
// majority, are never repaired: the scrub reports them and an operator decides. Every scrub that
// ran is logged, counted in ReplicationStat (ScrubbedBytes, ScrubMismatches, ScrubRepairedBytes,
// LastScrub) and recorded in condition ConditionScrubbed of the Volume's status (optimistic
// lock), True when the copies ended equal and False with the reason and the blocks otherwise. A
// canceled scrub records nothing. The condition is the only status the node writes outside
// status.replicas; the operator keeps conditions it does not own.
//
// Progress. A running sync reports its progress in the copy's message at most every
// progressInterval; a failed one leaves the copy CatchingUp with the error in its message and is
// retried the next interval, from another in-sync copy when there is one (the source may be
// unable to read a block, which only a scrub repairs, and scrubs wait while a copy catches up). The loop runs right after Open and every SyncInterval, re-reading the
// Volume each time, and stops (with every sync it runs) in Close before Close flushes.
//
// Events. With Options.Events, the node writes an Event on the Volume for what it did to a copy,
// related to the copy's Store: ReplicaDropped once the drop is in status, ReplicaRebuilt or
// ReplicaResynced (bytes copied and compared, time) once the copy is written InSync again,
// ReplicaSyncFailed when a try fails otherwise than the last one; EventFenced once per Open, the first time its I/O, a
// drop or the sync loop finds the Volume attached elsewhere or at a newer generation; and one per
// scrub (scheduled or at Open) that did not find the copies equal, with the Scrubbed condition's
// message. The operator's own Events (ReplicaLost, ReplicaReplaced, ReplicaInSync) say what it
// observed in status.
package replvol
