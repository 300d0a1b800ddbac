package devices

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
)

// Inspector inspects devices on one node. Its paths are fields so tests can point them at fakes.
type Inspector struct {
	// SysRoot is the sysfs mount, normally "/sys".
	SysRoot string
	// MountInfo is the mount table, normally "/proc/self/mountinfo".
	MountInfo string
	// StoresDir holds one directory per store whose metadata lives in this node's state directory
	// (stores made before label version 2), named by UUID. Stores whose metadata is on their
	// device need nothing from it.
	StoresDir string
	// ClusterID identifies the cluster this node serves (the node daemon gives its
	// StorageCluster's UID). A store whose label names another cluster is never mounted; zero
	// makes every store that names a cluster foreign.
	ClusterID [16]byte
}

// Inspect decides what to do with the device at path. It never writes to the device.
func (in Inspector) Inspect(path string, sel Selection) Decision {
	d := Decision{Path: path, Action: Skip}
	skip := func(format string, args ...any) Decision {
		d.Action, d.Reason = Skip, fmt.Sprintf(format, args...)
		return d
	}
	resolved, err := filepath.EvalSymlinks(path)
	if errors.Is(err, fs.ErrNotExist) && sel.FileSize > 0 {
		d.Action, d.Size = Mkfs, sel.FileSize // the file-backed device is created by mkfs
		return d
	}
	if err != nil {
		return skip("cannot resolve the path: %v", err)
	}
	var st unix.Stat_t
	if err := unix.Stat(resolved, &st); err != nil {
		return skip("cannot stat: %v", err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		// Known even for a device that is skipped, so its Store shows the right class.
		sys := filepath.Join(in.SysRoot, "class", "block", filepath.Base(resolved))
		// A partition has no queue of its own: its disk's is one directory up (through the symlink).
		d.Rotational = readFlag(sys+"/queue/rotational") || readFlag(sys+"/../queue/rotational")
		if reason := in.blockDeviceInUse(resolved, st.Rdev); reason != "" {
			return skip("%s", reason)
		}
	case unix.S_IFREG:
		if err := unix.Access(resolved, unix.W_OK); err != nil {
			return skip("is read-only: %v", err)
		}
	default:
		return skip("is neither a block device nor a regular file")
	}
	dev, err := blockdev.OpenFile(resolved, blockdev.Options{ReadOnly: true, QueueDepth: 1})
	if err != nil {
		return skip("cannot open: %v", err)
	}
	defer dev.Close()
	d.Size, d.Rotational = dev.Size(), dev.Rotational()
	if d.Size < sel.MinSize {
		return skip("is too small: %d bytes, at least %d needed", d.Size, sel.MinSize)
	}
	sig, err := blockdev.DetectSignature(dev)
	if err != nil {
		return skip("cannot read its signature: %v", err)
	}
	var label *blockdev.Label
	if sig.Kind == "cobalt" && sig.UUID != "" {
		// A label this binary cannot read (a newer version) has no UUID in its signature.
		if l, err := blockdev.ReadLabel(dev); err == nil {
			label = &l
		}
	}
	return in.decide(d, sig, label, sel.AllowWipe)
}

// decide turns a device's signature, and its Cobalt label when it carries one this binary reads,
// into an action.
func (in Inspector) decide(d Decision, sig blockdev.Signature, label *blockdev.Label, allowWipe bool) Decision {
	if sig.IsZero() {
		d.Action = Mkfs
		return d
	}
	var what string
	switch {
	case label != nil && label.MetadataDevice && (!label.HasCluster() || label.ClusterID == in.ClusterID):
		// Never a store, and never wiped: its store's data device needs it to mount.
		d.StoreCluster, d.MetadataDeviceOf = label.ClusterIDString(), label.UUIDString()
		d.Reason = fmt.Sprintf("is the metadata device of store %s: it is used with that store's data device, never as a store of its own", label.UUIDString())
		return d
	case label != nil && label.HasCluster() && label.ClusterID != in.ClusterID:
		d.StoreCluster = label.ClusterIDString()
		what = fmt.Sprintf("carries store %s of another Cobalt cluster (cluster ID %s; this cluster is %s): it is not mounted "+
			"here; move the disk back to a node of its cluster, or, to reuse it in this cluster and destroy its data, list it "+
			"in spec.devices.paths with spec.devices.allowWipe: true", label.UUIDString(), d.StoreCluster, in.clusterString())
	case label != nil && label.HasCluster():
		d.Action, d.StoreUUID, d.StoreCluster = Mount, label.UUIDString(), label.ClusterIDString()
		d.MetaOnDevice = label.MetaOnDevice() || label.MetaOnSeparateDevice
		d.MetaOnSeparateDevice = label.MetaOnSeparateDevice
		if !d.MetaOnDevice && !in.knownStore(d.StoreUUID) {
			// This cluster's store whose metadata directory is on another node: nothing to mount
			// from, and nothing to wipe (it is this cluster's).
			d.Action, d.MetaOnDevice = Skip, false
			d.Reason = fmt.Sprintf("carries store %s of this cluster, whose metadata is in the state directory of another node: move the disk back to that node", d.StoreUUID)
		}
		return d
	case label != nil && label.MetaOnDevice():
		// Label version 2: made before labels named a cluster. The cluster that mounts it first
		// adopts it (the mount records this cluster in its label).
		d.Action, d.StoreUUID, d.MetaOnDevice, d.Adopt = Mount, label.UUIDString(), true, true
		return d
	case label != nil && label.MetaOnSeparateDevice:
		what = fmt.Sprintf("carries store %s, which names no cluster and keeps its metadata on a separate device: such a store is not adopted", label.UUIDString())
	case label != nil && in.knownStore(label.UUIDString()):
		// Label version 1: this node holds its metadata directory.
		d.Action, d.StoreUUID = Mount, label.UUIDString()
		return d
	case sig.Kind == "cobalt" && sig.UUID != "" && label == nil:
		what = fmt.Sprintf("carries %s whose label this daemon cannot read (%s)", sig, sig.Detail)
	case sig.Kind == "cobalt" && sig.UUID != "":
		what = fmt.Sprintf("belongs to another cluster's store (%s): its metadata is in a state directory, not on this node", sig)
	case sig.Kind == "cobalt":
		what = fmt.Sprintf("carries a Cobalt label this daemon cannot read (%s)", sig.Detail)
	default:
		what = fmt.Sprintf("carries %s", sig)
	}
	if !allowWipe {
		d.Action, d.Reason = Skip, what+"; the cluster does not allow wiping devices"
		return d
	}
	d.Action, d.Force, d.Reason = Mkfs, true, what+"; wiping it as the spec allows"
	return d
}

func (in Inspector) clusterString() string {
	if in.ClusterID == [16]byte{} {
		return "unknown"
	}
	return blockdev.FormatUUID(in.ClusterID)
}

func (in Inspector) knownStore(uuid string) bool {
	if in.StoresDir == "" || strings.ContainsAny(uuid, "/.") {
		return false
	}
	fi, err := os.Stat(filepath.Join(in.StoresDir, uuid))
	return err == nil && fi.IsDir()
}

// blockDeviceInUse returns why a block device cannot be used ("" if it can): read-only, a disk
// with partitions, held by another layer, or mounted.
func (in Inspector) blockDeviceInUse(resolved string, rdev uint64) string {
	name := filepath.Base(resolved)
	if reason := sysfsReason(filepath.Join(in.SysRoot, "class", "block", name), name); reason != "" {
		return reason
	}
	f, err := os.Open(in.MountInfo)
	if err != nil {
		return fmt.Sprintf("cannot read the mount table: %v", err)
	}
	defer f.Close()
	mounts, err := parseMountInfo(f)
	if err != nil {
		return err.Error()
	}
	if mp := mountedAt(mounts, fmt.Sprintf("%d:%d", unix.Major(rdev), unix.Minor(rdev)), resolved); mp != "" {
		return "is mounted at " + mp
	}
	return ""
}

// readFlag reads a sysfs 0/1 flag; a missing or unreadable file reads as false.
func readFlag(path string) bool {
	b, err := os.ReadFile(path)
	return err == nil && strings.TrimSpace(string(b)) == "1"
}

// sysfsReason inspects a block device's sysfs directory.
func sysfsReason(dir, name string) string {
	if readFlag(filepath.Join(dir, "ro")) {
		return "is read-only"
	}
	if _, err := os.Stat(filepath.Join(dir, "partition")); errors.Is(err, fs.ErrNotExist) {
		// A whole disk: refuse it if it has partitions.
		entries, _ := os.ReadDir(dir)
		var parts []string
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), name) {
				if _, err := os.Stat(filepath.Join(dir, e.Name(), "partition")); err == nil {
					parts = append(parts, e.Name())
				}
			}
		}
		if len(parts) > 0 {
			sort.Strings(parts)
			return "has partitions (" + strings.Join(parts, ", ") + ")"
		}
	}
	if holders, err := os.ReadDir(filepath.Join(dir, "holders")); err == nil && len(holders) > 0 {
		names := make([]string, len(holders))
		for i, h := range holders {
			names[i] = h.Name()
		}
		return "is in use by " + strings.Join(names, ", ")
	}
	return ""
}

// mountedAt returns where the device devID (or path) is mounted, or "".
func mountedAt(mounts []mount, devID, path string) string {
	for _, m := range mounts {
		if m.devID == devID || m.source == path {
			return m.mountPoint
		}
	}
	return ""
}
