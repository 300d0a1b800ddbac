package bench

import (
	"fmt"

	"golang.org/x/sys/unix"
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

// MetadataLocation describes where a store whose metadata directory is dir keeps its metadata:
// today always the state directory on the host's file system, named with the file system's type
// (e.g. "state dir (host fs, ext4): /var/lib/cobalt/x"), since every metadata sync pays that file
// system's journal. A store with metadata on its device will say "device" here, so both layouts
// can be compared in one table. A dir that cannot be inspected is still named, without the type.
func MetadataLocation(dir string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return "state dir (host fs): " + dir
	}
	return fmt.Sprintf("state dir (host fs, %s): %s", fsName(int64(st.Type)), dir)
}
