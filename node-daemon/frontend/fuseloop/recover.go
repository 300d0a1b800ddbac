package fuseloop

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// livenessTimeout bounds the stat that tells a live FUSE mount from a dead one: a server that
// is alive but stuck would otherwise hang New.
const livenessTimeout = 5 * time.Second

// Recovery reports what New found and cleaned up from a previous process at MountDir.
type Recovery struct {
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
func recoverMountDir(ctx context.Context, dir string, detachTimeout time.Duration) (Recovery, error) {
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
		alive, err := fuseMountAlive(ctx, dir)
		if err != nil {
			return rec, err
		}
		if alive {
			return rec, fmt.Errorf("%s: a live FUSE server (%s) already serves it", dir, mounts[len(mounts)-1].Source)
		}
	}

	prefix := dir + "/"
	for n, path := range backing {
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

// fuseMountAlive stats dir: ENOTCONN means the server is gone. The stat runs aside so that a
// server that is alive but stuck fails New after livenessTimeout instead of hanging it.
func fuseMountAlive(ctx context.Context, dir string) (bool, error) {
	done := make(chan error, 1)
	go func() {
		var st unix.Stat_t
		done <- unix.Stat(dir, &st)
	}()
	t := time.NewTimer(livenessTimeout)
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
		return false, fmt.Errorf("stat %s: no answer in %v: its FUSE server is alive but stuck", dir, livenessTimeout)
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
