// Package csinode is the node plugin of Cobalt's CSI driver (csi.cobalt.io), run inside the node
// daemon: it turns a Volume of one of the daemon's stores into a block device on this node
// (package frontend, fuseloop in production) and mounts it where kubelet asks.
//
// Calls:
//   - NodeStageVolume finds the volume from the volume context (store UUID and volume UID,
//     through the consumer-side Volumes interface; StoreVolumes adapts the daemon's stores),
//     exposes it as /dev/loopN, and for mount access formats it only when it carries no file
//     system (mount-utils SafeFormatAndMount; ext4 by default, xfs) and mounts it at the staging
//     path with the capability's mount flags. A device with another file system than the one
//     asked for is refused (FailedPrecondition): a volume is never re-formatted.
//   - A replicated volume (volume context driver.ContextReplicas above 1) is opened instead
//     through Options.Replicated (ReplicatedVolumes: a coordinator of package replica) at the
//     attachment generation that ControllerPublishVolume put in the publish context
//     (driver.PublishContextGeneration), and its backend is exposed through the same frontend.
//     Staging it again at the same generation changes nothing; at a newer one (re-attached) it
//     is reopened there, the device switches to the new backend (same /dev/loopN, even while
//     mounted) and the old backend, which the new Open fenced, is closed once its calls in
//     flight have returned; at an older one it is refused.
//   - NodePublishVolume bind-mounts the staging mount (read-only when asked) or, for block
//     access, the device node onto a file at the target path.
//   - NodeUnpublishVolume and NodeUnstageVolume unmount and remove the path; unstage then flushes
//     and removes the device, then closes a replicated volume's backend. Both succeed when there
//     is nothing left to do.
//   - NodeExpandVolume grows the device to the volume's size on its store, or what every copy of
//     a replicated volume holds (ReplicatedBackend.Size) (the controller grew those), and the
//     file system online (resize2fs, xfs_growfs). ext4 needs CAP_SYS_RESOURCE.
//   - NodeGetVolumeStats reports statfs bytes and inodes, or the device size for block access;
//     NodeGetVolumeHealth (CSI 1.14's successor of VOLUME_CONDITION) reports the store's health,
//     whether the device is served, and whether the path holds the current device; for a
//     replicated volume, instead of the store, whether its I/O found it fenced or without an
//     in-sync copy (ReasonFenced, ReasonNoInSyncCopy).
//   - Server.Close, called by the daemon once the CSI gRPC server stopped, closes every open
//     replicated backend after its calls in flight; the server opens none afterwards.
//
// Errors: a request missing a field, an access mode for several nodes, or a file system other
// than ext4 and xfs is InvalidArgument; a volume whose store is not served here is
// FailedPrecondition, a missing volume NotFound; a stage at another path or a publish of a
// volume not staged is FailedPrecondition, a repeat with another capability AlreadyExists;
// publishing block-staged as a file system (or the reverse) is InvalidArgument; a concurrent
// call on the same volume is Aborted (retried by kubelet). For a replicated volume: a missing or
// malformed generation is InvalidArgument, a server without Options.Replicated FailedPrecondition;
// a volume or copies gone is NotFound (ErrVolumeNotFound), a copy that accepted a newer
// generation FailedPrecondition ("attached to another node at a newer generation", ErrFenced),
// no reachable in-sync copy Unavailable (ErrNoInSyncCopy, retried).
//
// Stage records: kubelet gives the volume context to stage and publish only, so every staged volume
// has a JSON record (volume ID, store UUID, volume UID, staging path, access type and mode, fs
// type, mount flags, device, publish targets with read-only flag and access type; for a replicated
// volume its number of copies and attachment generation) in Options.StateDir, which must outlive
// the daemon's container (a hostPath). A record is written atomically (temp file, fsync, rename,
// directory fsync) before the step it describes, so a crash at any point leaves a record that a
// retry, an unstage or Recover can finish. Records are versioned and written at the lowest version
// that holds them: version 1 for single-copy volumes (so an older daemon still reads them), version
// 2 with replicas and generation; both are read, a newer version is refused.
//
// Restart: the devices die with the daemon. Kubelet never stages a volume again, so the daemon runs
// Recover after its stores are mounted and before it serves CSI: for every record it exposes the
// volume again (a new /dev/loopM), detaches (MNT_DETACH) the stale publish mounts and the staging
// mount (a replicated volume is reopened at its recorded generation first; one attached elsewhere
// meanwhile fails as fenced), mounts the new device at the staging path (never formatting; nouuid
// for xfs) and bind-mounts every recorded target again. Volumes it cannot serve are returned,
// logged and reported as events; it never stops at one. What a Pod sees: from the daemon's death
// on, every read, write and fsync on the old mount returns EIO (the file system may turn
// read-only); the running container keeps that dead mount, because a container's mounts are fixed
// when it starts. A container that restarts, or a new Pod, gets the re-served mount, holding every
// write that was fsync'd before the death. Only Pods whose containers restart see the volume again;
// a Pod that must survive a node daemon restart needs a liveness probe that fails on EIO.
//
// Invariants: a volume's calls never interleave (in-flight set per volume ID); a device is
// formatted only when blkid finds no signature on it; nothing is mounted at a path without a
// record saying so; every device the Server exposes is removed by NodeUnstageVolume. A
// replicated volume's generation is recorded before it is opened at it, so Recover reopens the
// newest generation this node was given; its device is served by the backend of the newest
// generation opened; a replaced backend is closed only after the device serves the new one and
// its calls in flight have returned, and gets no call after its Close; every backend is closed
// once, by the stage that replaced it, NodeUnstageVolume or Server.Close.
package csinode
