package bench

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/cobaltstore/cobalt/storage-engine/store"
)

// fsName names the file systems a state directory is commonly on, by statfs magic number.
func fsName(magic int64) string {
	switch magic {
	case unix.EXT4_SUPER_MAGIC:
		return "ext4"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs"
	case unix.NFS_SUPER_MAGIC:
		return "nfs"
	}
	return fmt.Sprintf("type %#x", magic)
}

// metadataLocation describes where the open store s, made with metadata directory dir ("" for
// none) or metadata device metaDev, keeps its metadata: on its device ("device (metafs on the
// benchmarked device): device region [offset, +length)"), on the metadata device ("metadata
// device (metafs on PATH): metadata device region [offset, +length)") or in dir
// (MetadataLocation).
func metadataLocation(s *store.Store, dir, metaDev string) string {
	if s.MetadataOnSeparateDevice() {
		return "metadata device (metafs on " + metaDev + "): " + s.MetadataLocation()
	}
	if s.MetadataOnDevice() {
		return "device (metafs on the benchmarked device): " + s.MetadataLocation()
	}
	return MetadataLocation(dir)
}

// MetadataLocation describes a metadata directory dir on the host: the state directory on the
// host's file system, named with the file system's type (e.g. "state dir (host fs, ext4):
// /var/lib/cobalt/x"), since every metadata sync pays that file system's journal. A dir that
// cannot be inspected is still named, without the type.
func MetadataLocation(dir string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return "state dir (host fs): " + dir
	}
	return fmt.Sprintf("state dir (host fs, %s): %s", fsName(int64(st.Type)), dir)
}
