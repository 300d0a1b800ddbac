package fuseloop

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// closeFuseFDsOnExec sets FD_CLOEXEC on every descriptor of this process open on /dev/fuse.
// go-fuse opens /dev/fuse for a direct mount without O_CLOEXEC, so every process the daemon
// starts afterwards (mkfs, mount, fsck through mount-utils; the node daemons a test starts) would
// inherit the server's end of the FUSE connection. The kernel aborts a connection only when its
// last /dev/fuse descriptor closes: if the daemon died while such a child lived, the connection
// would stay up with nobody serving it, and every I/O to the volumes' loop devices (the child's
// own included, and losetup -a) would wait forever instead of failing with EIO.
// REQUIRES: syscall.ForkLock held for reading since before the mount opened /dev/fuse, so that
// no exec in between hands the descriptor to a child.
func closeFuseFDsOnExec() error {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("list descriptors: %w", err)
	}
	var errs []error
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil || target != "/dev/fuse" {
			continue // closed meanwhile (the directory's own descriptor), or not FUSE
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil {
			if !errors.Is(err, unix.EBADF) {
				errs = append(errs, fmt.Errorf("F_GETFD %d: %w", fd, err))
			}
			continue
		}
		if flags&unix.FD_CLOEXEC == 0 {
			if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, flags|unix.FD_CLOEXEC); err != nil {
				errs = append(errs, fmt.Errorf("set FD_CLOEXEC on /dev/fuse descriptor %d: %w", fd, err))
			}
		}
	}
	return errors.Join(errs...)
}
