package fuseloop

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Loop flags from <linux/loop.h> (golang.org/x/sys/unix does not define them).
const (
	loFlagsAutoclear = 4
	loFlagsDirectIO  = 16
)

// attachRetries bounds how often attach asks /dev/loop-control for another free device after
// losing a race for one to other users of the host's loop devices.
const attachRetries = 32

// pollInterval is how often detach and recovery look again whether the kernel let a device go.
const pollInterval = 10 * time.Millisecond

// loopDevice is a loop device this process attached, held open for as long as it is exposed.
// Holding it open is what makes LO_FLAGS_AUTOCLEAR useful: if the process dies, the kernel
// closes the descriptor and detaches the device as soon as nobody else has it open.
type loopDevice struct {
	number int
	dev    *os.File
	// backingDev and backingIno identify the backing file, so that a device number the kernel
	// reused for someone else's file is never mistaken for ours.
	backingDev, backingIno uint64
}

func (l *loopDevice) path() string { return loopPath(l.number) }

func loopPath(n int) string { return "/dev/loop" + strconv.Itoa(n) }

func loopSysfs(n int, attr string) string {
	return filepath.Join("/sys/block", "loop"+strconv.Itoa(n), "loop", attr)
}

// attachLoop binds a free loop device to backing with direct I/O, autoclear and the given
// logical block size, and returns it held open. It retries when another user of the host grabs
// the free device between LOOP_CTL_GET_FREE and LOOP_CONFIGURE (EBUSY).
func attachLoop(ctx context.Context, backing *os.File, blockSize int) (*loopDevice, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(backing.Fd()), &st); err != nil {
		return nil, fmt.Errorf("stat backing file %s: %w", backing.Name(), err)
	}
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open loop control: %w", err)
	}
	defer ctl.Close()

	var lastErr error
	for range attachRetries {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("attach loop device to %s: %w", backing.Name(), err)
		}
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return nil, fmt.Errorf("LOOP_CTL_GET_FREE: %w", err)
		}
		l, err := configureLoop(n, backing, blockSize)
		if err == nil {
			l.backingDev, l.backingIno = st.Dev, st.Ino
			return l, nil
		}
		// EBUSY: someone configured it first. ENOENT/ENXIO: the device node was not there
		// yet, or the device went away again. Both are races with other users: ask again.
		if !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENXIO) {
			return nil, err
		}
		lastErr = err
	}
	return nil, fmt.Errorf("attach loop device to %s: lost the race for a free device %d times: %w",
		backing.Name(), attachRetries, lastErr)
}

func configureLoop(n int, backing *os.File, blockSize int) (*loopDevice, error) {
	dev, err := os.OpenFile(loopPath(n), os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", loopPath(n), err)
	}
	cfg := unix.LoopConfig{Fd: uint32(backing.Fd()), Size: uint32(blockSize)}
	cfg.Info.Flags = loFlagsDirectIO | loFlagsAutoclear
	copy(cfg.Info.File_name[:len(cfg.Info.File_name)-1], backing.Name())
	if err := unix.IoctlLoopConfigure(int(dev.Fd()), &cfg); err != nil {
		dev.Close()
		return nil, fmt.Errorf("LOOP_CONFIGURE %s: %w", loopPath(n), err)
	}
	l := &loopDevice{number: n, dev: dev}
	dio, err := os.ReadFile(loopSysfs(n, "dio"))
	if err != nil || strings.TrimSpace(string(dio)) != "1" {
		// Without direct I/O the loop device would cache in the page cache of the FUSE file as
		// well as its own, and write back through the daemon under memory pressure.
		_ = unix.IoctlSetInt(int(dev.Fd()), unix.LOOP_CLR_FD, 0)
		dev.Close()
		if err == nil {
			err = fmt.Errorf("dio=%q", strings.TrimSpace(string(dio)))
		}
		return nil, fmt.Errorf("%s: kernel did not enable direct I/O: %w", loopPath(n), err)
	}
	return l, nil
}

// setCapacity makes the kernel re-read the size of the backing file.
func (l *loopDevice) setCapacity() error {
	if err := unix.IoctlSetInt(int(l.dev.Fd()), unix.LOOP_SET_CAPACITY, 0); err != nil {
		return fmt.Errorf("LOOP_SET_CAPACITY %s: %w", l.path(), err)
	}
	return nil
}

// size returns the device's size as the block layer sees it.
func (l *loopDevice) size() (int64, error) {
	return blockDeviceSize(l.dev)
}

func blockDeviceSize(f *os.File) (int64, error) {
	var size uint64
	if err := ioctlPtr(f, unix.BLKGETSIZE64, &size); err != nil {
		return 0, fmt.Errorf("BLKGETSIZE64 %s: %w", f.Name(), err)
	}
	return int64(size), nil
}

// flush writes the device's dirty pages and sends a cache flush down to the backing file, which
// FUSE turns into FSYNC and the file system into Backend.Flush.
func (l *loopDevice) flush() error {
	if err := l.dev.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", l.path(), err)
	}
	return nil
}

// release asks the kernel to detach the device (LOOP_CLR_FD: at once if this process is its only
// user, else when its last user closes it: the ioctl sets autoclear) and closes the descriptor.
// It then waits up to timeout for the device to let go of the backing file and reports whether
// it did.
func (l *loopDevice) release(ctx context.Context, timeout time.Duration) (bool, error) {
	err := unix.IoctlSetInt(int(l.dev.Fd()), unix.LOOP_CLR_FD, 0)
	if err != nil && !errors.Is(err, unix.ENXIO) {
		return false, fmt.Errorf("LOOP_CLR_FD %s: %w", l.path(), err)
	}
	if err := l.dev.Close(); err != nil {
		return false, fmt.Errorf("close %s: %w", l.path(), err)
	}
	return waitUnbound(ctx, timeout, func() (bool, error) { return l.boundToBacking() })
}

// boundToBacking reports whether the device still serves this loopDevice's backing file.
func (l *loopDevice) boundToBacking() (bool, error) {
	f, err := os.OpenFile(l.path(), os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENXIO) || errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("open %s: %w", l.path(), err)
	}
	defer f.Close()
	info, err := unix.IoctlLoopGetStatus64(int(f.Fd()))
	if err != nil {
		if errors.Is(err, unix.ENXIO) {
			return false, nil
		}
		return false, fmt.Errorf("LOOP_GET_STATUS64 %s: %w", l.path(), err)
	}
	return info.Device == l.backingDev && info.Inode == l.backingIno, nil
}

// reopen takes a descriptor on the device again, if it still serves this backing file.
func (l *loopDevice) reopen() (bool, error) {
	f, err := os.OpenFile(l.path(), os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENXIO) || errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("open %s: %w", l.path(), err)
	}
	// Holding f, the device cannot be detached under us: the check below stays true.
	info, err := unix.IoctlLoopGetStatus64(int(f.Fd()))
	if err != nil || info.Device != l.backingDev || info.Inode != l.backingIno {
		f.Close()
		if err != nil && !errors.Is(err, unix.ENXIO) {
			return false, fmt.Errorf("LOOP_GET_STATUS64 %s: %w", l.path(), err)
		}
		return false, nil
	}
	l.dev = f
	return true, nil
}

// waitUnbound polls bound until it reports false or timeout passes; it returns whether the
// device let go.
func waitUnbound(ctx context.Context, timeout time.Duration, bound func() (bool, error)) (bool, error) {
	deadline := time.Now().Add(timeout)
	for {
		b, err := bound()
		if err != nil {
			return false, err
		}
		if !b {
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(pollInterval):
		}
	}
}

// backingFiles lists the loop devices of the host with the path of their backing file, as the
// kernel recorded it when the device was attached.
func backingFiles() (map[int]string, error) {
	paths, err := filepath.Glob("/sys/block/loop*/loop/backing_file")
	if err != nil {
		return nil, fmt.Errorf("list loop devices: %w", err)
	}
	out := make(map[int]string, len(paths))
	for _, p := range paths {
		name := filepath.Base(filepath.Dir(filepath.Dir(p)))
		n, err := strconv.Atoi(strings.TrimPrefix(name, "loop"))
		if err != nil {
			continue // not a loopN directory
		}
		b, err := os.ReadFile(p)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // detached while we looked
			}
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		out[n] = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), " (deleted)")
	}
	return out, nil
}
