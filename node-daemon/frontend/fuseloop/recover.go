package fuseloop

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// Recovery reports what New found and cleaned up from a previous process at MountDir.
type Recovery struct {
	// Aborted is how many FUSE connections at MountDir New aborted because their server did not
	// answer (a previous daemon stuck on its way out: a thread waiting in the kernel for I/O to a
	// loop device that only its own, dying, FUSE server could complete).
	Aborted int
	// DeadMounts is how many dead FUSE mounts (their server gone: "transport endpoint is not
	// connected") New lazily unmounted from MountDir.
	DeadMounts int
	// Detached are loop devices that were bound to a file under MountDir and are free now.
	Detached []StaleDevice
	// Busy are loop devices bound to a file under MountDir that someone still has open (a
	// mounted file system, a process): every I/O on them fails with EIO, and the kernel
	// detaches them when their last user closes them (autoclear is set).
	Busy []StaleDevice
}

// StaleDevice is a loop device a previous process left bound to one of its volume files.
type StaleDevice struct {
	// Path is the device node, for example /dev/loop7.
	Path string
	// VolumeID is the name of the file it was bound to: the volume it served.
	VolumeID string
}

// recoverMountDir cleans up after a previous process that served dir and died: it detaches the
// loop devices bound to files under dir (or marks them autoclear when they are in use) and
// lazily unmounts dead FUSE mounts at dir. A live FUSE server at dir, or a mount that is not
// FUSE, is an error: dir belongs to someone else.
func recoverMountDir(ctx context.Context, dir string, detachTimeout, stuckTimeout time.Duration) (Recovery, error) {
	var rec Recovery
	// Read the loop devices first: the paths the kernel shows for their backing files stop
	// naming dir once the mount is detached.
	backing, err := backingFiles()
	if err != nil {
		return rec, err
	}
	mounts, err := mountinfo.GetMounts(func(m *mountinfo.Info) (skip, stop bool) {
		return m.Mountpoint != dir, false
	})
	if err != nil {
		return rec, fmt.Errorf("read mountinfo: %w", err)
	}
	// Every mount at dir must be a dead FUSE mount: anything else belongs to someone else, and
	// so do the loop devices bound to files in it.
	for _, m := range mounts {
		if m.FSType != "fuse" && !strings.HasPrefix(m.FSType, "fuse.") {
			return rec, fmt.Errorf("%s: a %s file system is mounted there, not a FUSE mount of a previous process", dir, m.FSType)
		}
	}
	if len(mounts) > 0 {
		alive, err := fuseMountAlive(ctx, dir, stuckTimeout)
		if errors.Is(err, errStuck) {
			// A server that does not answer is a previous daemon that cannot exit: one of its
			// threads waits in the kernel for I/O to a loop device bound to its own file, which
			// only its (dying) FUSE server could complete, and its connection lives until that
			// thread returns. Aborting the connection fails that I/O (EIO), lets it exit, and
			// frees the devices. dir belongs to this daemon alone, so no one else's server is hit.
			for _, m := range mounts {
				if aerr := AbortConnection(m.Mountpoint, uint32(m.Major), uint32(m.Minor)); aerr != nil {
					return rec, fmt.Errorf("%w; aborting its connection: %w", err, aerr)
				}
				rec.Aborted++
			}
			alive, err = fuseMountAlive(ctx, dir, stuckTimeout)
		}
		if err != nil {
			return rec, err
		}
		if alive {
			return rec, fmt.Errorf("%s: a live FUSE server (%s) already serves it", dir, mounts[len(mounts)-1].Source)
		}
	}

	prefix := dir + "/"
	for _, n := range slices.Sorted(maps.Keys(backing)) {
		path := backing[n]
		id, ok := strings.CutPrefix(path, prefix)
		if !ok || id == "" || strings.Contains(id, "/") {
			continue
		}
		dev := StaleDevice{Path: loopPath(n), VolumeID: id}
		freed, err := releaseStale(ctx, n, path, detachTimeout)
		if err != nil {
			return rec, err
		}
		if freed {
			rec.Detached = append(rec.Detached, dev)
		} else {
			rec.Busy = append(rec.Busy, dev)
		}
	}
	// Unmount last: a device's backing-file path stops naming dir once the mount is detached,
	// and releaseStale compares it. Mounts can be stacked (a process died twice without
	// recovery in between); each MNT_DETACH takes the top one off.
	for range mounts {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			return rec, fmt.Errorf("unmount dead FUSE mount at %s: %w", dir, err)
		}
		rec.DeadMounts++
	}
	return rec, nil
}

// errStuck: the FUSE server at a mount did not answer a stat in time.
var errStuck = errors.New("its FUSE server is alive but stuck")

// fuseMountAlive stats dir: ENOTCONN means the server is gone. The stat runs aside so that a
// server that is alive but stuck returns errStuck after timeout instead of hanging New.
func fuseMountAlive(ctx context.Context, dir string, timeout time.Duration) (bool, error) {
	done := make(chan error, 1)
	go func() {
		var st unix.Stat_t
		done <- unix.Stat(dir, &st)
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-done:
		if errors.Is(err, unix.ENOTCONN) || errors.Is(err, unix.ECONNABORTED) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("stat %s: %w", dir, err)
		}
		return true, nil
	case <-t.C:
		return false, fmt.Errorf("stat %s: no answer in %v: %w", dir, timeout, errStuck)
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// releaseStale detaches loop device n if it is still bound to path, and reports whether it is
// free. A device in use is left to autoclear (LOOP_CLR_FD sets it).
func releaseStale(ctx context.Context, n int, path string, timeout time.Duration) (bool, error) {
	boundToPath := func() (bool, error) {
		b, err := os.ReadFile(loopSysfs(n, "backing_file"))
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("read backing file of %s: %w", loopPath(n), err)
		}
		return strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), " (deleted)") == path, nil
	}
	f, err := os.OpenFile(loopPath(n), os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENXIO) || errors.Is(err, unix.ENOENT) {
			return true, nil // the kernel let it go already (autoclear when its opener died)
		}
		return false, fmt.Errorf("open %s: %w", loopPath(n), err)
	}
	// Holding f, the device cannot be detached and reused by someone else before the ioctl.
	bound, err := boundToPath()
	if err != nil || !bound {
		f.Close()
		return !bound, err
	}
	err = unix.IoctlSetInt(int(f.Fd()), unix.LOOP_CLR_FD, 0)
	f.Close()
	if err != nil && !errors.Is(err, unix.ENXIO) {
		return false, fmt.Errorf("LOOP_CLR_FD %s: %w", loopPath(n), err)
	}
	return waitUnbound(ctx, timeout, boundToPath)
}

// fusectlDir is where the kernel's fusectl file system lists FUSE connections.
const fusectlDir = "/sys/fs/fuse/connections"

// AbortConnection aborts the FUSE connection of the mount at mountDir, whose device number
// (st_dev of the mount, or mountinfo's major:minor) is major:minor, through fusectl (mounting
// fusectl when it is not): every request waiting on it fails, and the server's /dev/fuse is dead.
// It needs no answer from the server, so it works on a stuck one. An error wraps
// os.ErrNotExist when the kernel lists no such connection (it ended already).
func AbortConnection(mountDir string, major, minor uint32) error {
	// The connection's directory is named by the kernel's dev_t of the mount (major<<20 | minor).
	id := uint64(major)<<20 | uint64(minor)
	abort := fmt.Sprintf("%s/%d/abort", fusectlDir, id)
	if _, err := os.Stat(abort); errors.Is(err, os.ErrNotExist) {
		// fusectl is not mounted (no systemd mounted it at boot): mount it for the abort and
		// take it off again, leaving the host's mounts as they were.
		if err := unix.Mount("fusectl", fusectlDir, "fusectl", 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount fusectl at %s: %w", fusectlDir, err)
		} else if err == nil {
			defer func() { _ = unix.Unmount(fusectlDir, unix.MNT_DETACH) }()
		}
	}
	if err := os.WriteFile(abort, []byte("1"), 0); err != nil {
		return fmt.Errorf("abort FUSE connection %d of %s: %w", id, mountDir, err)
	}
	return nil
}
