// Package controllers holds Cobalt's reconcilers: StorageCluster, Store, Volume and Snapshot.
//
// Each reconciler's Reconcile only orchestrates: it reads the object, handles deletion or adds the
// finalizer (ensureFinalizer and removeFinalizer in finalizer.go, which write only when the
// finalizers change), runs small phase functions that record what they observe, and writes status
// once, from a deferred merge patch that carries only what changed. Status is computed from those
// observations by pure functions (the *_status.go and volume_placement.go files) that take the
// inputs and the current time and are unit-tested without an API server; no phase sets a
// condition itself.
//
// Invariants:
//   - Data is never dropped silently. A Volume's finalizer is removed only after the node that
//     owns the Store of every copy confirmed the delete (or that Store is gone, so there is
//     nothing left to free); a copy that cannot be freed keeps the Volume, and the others are
//     freed meanwhile.
//     A StorageCluster's finalizer is removed only when no Volume is placed on any of its Stores;
//     until then its Ready and Progressing conditions name the Volumes that block it. A Store's
//     finalizer is removed only when no Volume is placed on it and no Snapshot is held on it. A
//     Snapshot's finalizer is removed only after its node deleted it (or its Store is gone, or
//     it was never taken).
//   - A node daemon rollout never takes down the last in-sync copy of a replicated Volume: the
//     DaemonSet's update strategy is OnDelete and the StorageCluster reconciler restarts the
//     outdated daemons (pod template hash annotation) one node at a time, once every daemon is
//     Ready, skipping a node whose restart would leave a replicated Volume with copies elsewhere
//     but none of them in sync on a Ready Store (Progressing says RolloutBlocked and names it).
//   - A Snapshot is taken once, on the Store of its source Volume, and from then on depends only
//     on that Store: its source Volume may be deleted (the node keeps the shared data by
//     reference count), so no owner reference ties a Snapshot to its Volume. Its sizes are
//     refreshed from the node periodically, as its exclusive size grows when the source is
//     overwritten.
//   - A Volume with spec.source (a restore from a Snapshot, a clone of a Volume) is created only
//     once its source is ready, only on its source's Store, and only when it is at least as
//     large as its source (SourceTooLarge otherwise, without asking the node); the node is given
//     the source's node ID as content source. Once created it no longer depends on its source.
//   - A Volume's Ready condition says whether it can be used at its allocated size; a growth that
//     fails (no room, node error) leaves Ready alone and is reported by its Resizing condition.
//   - A Volume is placed once: spec.storeName (and, for replicas > 1, spec.replicaStoreNames,
//     in the same write) is written when the Volume is placed, and the API server refuses any
//     later change to it but one: the operator moves one copy of a replicated Volume per update
//     (one Store name swapped for another, the others unchanged), to replace a Lost copy or to
//     drain a Store set out. Every Store named there counts the Volume's whole size as reserved
//     (the volumeStoreIndex indexes a Volume under each of them), blocks its own and its
//     StorageCluster's deletion, and gets the Volume's create, grow and delete calls.
//   - Replicated Volumes (volume_replicas.go, volume_replica_placement.go,
//     volume_replica_status.go): two copies never share a Store; copies go to distinct nodes,
//     spread over as many zones (topology.kubernetes.io/zone) as there are, and to distinct
//     Stores of one node only with spec.replicaPlacement.allowSameNode. When they do not fit,
//     Ready is False (Unschedulable) and says how many nodes or Stores they need and have.
//     Each copy's state in status.replicas is decided by the operator from what it sees:
//     Pending until created, InSync once created, Lost while its Store is missing or not Ready,
//     CatchingUp when that Store returns, CatchingUp when created after the Volume was in service
//     (a replacement or a move: it starts empty); the operator never promotes a Lost or
//     CatchingUp copy to InSync (only the replicated data path, which resyncs or rebuilds it,
//     may). Degraded is True when fewer copies than replicas are InSync (Rebuilding while one is
//     CatchingUp). status.placement is the first copy's Store. The Volume watch passes status
//     changes of the copies' Stores and states and of the attachment (volumeCopiesChanged), so
//     what the serving node records is followed at once.
//   - Moving copies (volume_replica_moves.go, volume_replica_move_phases.go): a copy Lost for
//     longer than ReplicaReplacementDelay (since status.replicas[].lostSince) is replaced on a
//     Store picked by the placement rules (never one holding a copy, a moving one or a retired
//     leftover of the Volume), and an InSync copy on a Store set out is moved likewise, one
//     drain at a time; a move needs another copy InSync on a usable Store to rebuild from. A
//     copy whose Store left spec stays in status.replicas while it is InSync and fewer than
//     replicas copies in spec are InSync (the serving node keeps writing it), so the last InSync
//     copy is never retired; otherwise it is retired: moved to status.retiredReplicas, and
//     deleted on its node by a later reconcile (after the serving node saw it leave) once its
//     Store is Ready, or dropped when its Store no longer exists. Volume deletion frees the
//     copies in spec, moving ones and retired leftovers alike (holdingStores).
//   - Opt-in: replication is new (the node serving a replicated Volume sends its writes to every
//     copy through node-daemon/replvol since this step), so the reconciler places and creates
//     replicated Volumes only with ReplicationEnabled (cmd/manager's --enable-replication,
//     default off). Without it such a Volume stays unplaced with Ready False, reason
//     ReplicationUnavailable; its deletion still frees any copy it has.
//   - Placement only picks Stores that are Ready (fresh heartbeat and a published node daemon
//     endpoint, so the node can be reached at once), admin state "in", whose engine has not
//     Failed (a Degraded one still takes Volumes), not skipped by the node daemon, matching the Volume's selectors, belonging to a StorageCluster that is not
//     being deleted, and with room for the whole requested size.
//   - controllers talk to nodes only through CR status (heartbeats, capacity) and the NodeClient
//     interface; this package imports nothing from storage-engine or node-daemon. The interface
//     is implemented by the sub-package nodeapi over node-daemon/client (the gRPC client, which
//     imports only node-daemon/proto), and cmd/manager wires it in: nodeapi imports controllers,
//     never the reverse. No package of controllers/... imports node-daemon/server or
//     storage-engine, and the node daemon imports none of controllers/... (test/layers).
//   - Time comes from an injected clock (k8s.io/utils/clock.PassiveClock), never from time.Now
//     directly.
package controllers
