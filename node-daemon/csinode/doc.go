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
//   - NodePublishVolume bind-mounts the staging mount (read-only when asked) or, for block
//     access, the device node onto a file at the target path.
//   - NodeUnpublishVolume and NodeUnstageVolume unmount and remove the path; unstage then flushes
//     and removes the device. Both succeed when there is nothing left to do.
//   - NodeExpandVolume grows the device to the volume's size on its store (the controller grew
//     that) and the file system online (resize2fs, xfs_growfs). ext4 needs CAP_SYS_RESOURCE.
//   - NodeGetVolumeStats reports statfs bytes and inodes, or the device size for block access;
//     NodeGetVolumeHealth (CSI 1.14's successor of VOLUME_CONDITION) reports the store's health,
//     whether the device is served, and whether the path holds the current device.
//
// Errors: a request missing a field, an access mode for several nodes, or a file system other
// than ext4 and xfs is InvalidArgument; a volume whose store is not served here is
// FailedPrecondition, a missing volume NotFound; a stage at another path or a publish of a
// volume not staged is FailedPrecondition, a repeat with another capability AlreadyExists;
// publishing block-staged as a file system (or the reverse) is InvalidArgument; a concurrent
// call on the same volume is Aborted (retried by kubelet).
//
// Stage records: kubelet gives the volume context to stage and publish only, so every staged
// volume has a JSON record (volume ID, store UUID, volume UID, staging path, access type and
// mode, fs type, mount flags, device, publish targets with read-only flag and access type) in
// Options.StateDir, which must outlive the daemon's container (a hostPath). A record is written
// atomically (temp file, fsync, rename, directory fsync) before the step it describes, so a
// crash at any point leaves a record that a retry, an unstage or Recover can finish.
//
// Restart: the devices die with the daemon. Kubelet never stages a volume again, so the daemon
// runs Recover after its stores are mounted and before it serves CSI: for every record it exposes
// the volume again (a new /dev/loopM), detaches (MNT_DETACH) the stale publish mounts and the
// staging mount, mounts the new device at the staging path (never formatting; nouuid for xfs)
// and bind-mounts every recorded target again. Volumes it cannot serve are returned, logged and
// reported as events; it never stops at one. What a Pod sees: from the daemon's death on, every
// read, write and fsync on the old mount returns EIO (the file system may turn read-only); the
// running container keeps that dead mount, because a container's mounts are fixed when it
// starts. A container that restarts, or a new Pod, gets the re-served mount, holding every
// write that was fsync'd before the death. Only Pods whose containers restart see the volume
// again; a Pod that must survive a node daemon restart needs a liveness probe that fails on EIO.
//
// Invariants: a volume's calls never interleave (in-flight set per volume ID); a device is
// formatted only when blkid finds no signature on it; nothing is mounted at a path without a
// record saying so; every device the Server exposes is removed by NodeUnstageVolume.
package csinode
