package eiodev

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sys/unix"

	"github.com/cobaltstore/cobalt/node-daemon/frontend/fuseloop"
)

// DefaultCloseTimeout bounds the orderly part of Device.Close.
const DefaultCloseTimeout = 30 * time.Second

// volumeID names the one volume file of a Device's mount.
const volumeID = "eio"

// Options configure New.
type Options struct {
	// Dir holds the backing file (backing.img) and the FUSE mount (mnt). Required.
	Dir string
	// Size is the device's size in bytes, a multiple of BlockSize. Required.
	Size int64
	// BlockSize is the logical block size of the loop device (fuseloop.Options.BlockSize; 0:
	// fuseloop's default, 4096).
	BlockSize int
	// CloseTimeout bounds Close before it aborts the FUSE connection (default DefaultCloseTimeout).
	CloseTimeout time.Duration
	// Log receives fuseloop's reports, one error per failed I/O (default: discarded).
	Log logr.Logger
}

// Device is a loop device served by a Backend through fuseloop in this process.
type Device struct {
	backend      *Backend
	fe           *fuseloop.Frontend
	path         string
	mountDir     string
	fileDev      uint64 // st_dev and st_ino of the volume file in the mount: the loop device's
	fileIno      uint64 // backing file as LOOP_GET_STATUS64 reports it
	connMajor    uint32 // the device number of the FUSE mount, which names its connection
	connMinor    uint32
	closeTimeout time.Duration
}

// Available says why devices cannot be made here (not root, no /dev/fuse or /dev/loop-control),
// or returns nil.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("eiodev: needs root (mounts FUSE and attaches loop devices)")
	}
	for _, p := range []string{"/dev/fuse", "/dev/loop-control"} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("eiodev: needs %s: %w", p, err)
		}
	}
	return nil
}

// New creates the backing file, mounts a fuseloop frontend under opts.Dir and exposes a healthy
// Backend as a loop device. The caller must Close it.
func New(ctx context.Context, opts Options) (*Device, error) {
	if opts.Dir == "" {
		return nil, errors.New("eiodev: Options.Dir is required")
	}
	if opts.CloseTimeout == 0 {
		opts.CloseTimeout = DefaultCloseTimeout
	}
	if opts.Log.GetSink() == nil {
		opts.Log = logr.Discard()
	}
	b, err := NewBackend(filepath.Join(opts.Dir, "backing.img"), opts.Size)
	if err != nil {
		return nil, err
	}
	fe, err := fuseloop.New(ctx, fuseloop.Options{
		MountDir:  filepath.Join(opts.Dir, "mnt"),
		BlockSize: opts.BlockSize,
		// The test process serves its devices' users (O_DIRECT daemons); it does not take
		// PR_SET_IO_FLUSHER for the whole test binary.
		DisableIOFlusher: true,
		Log:              opts.Log,
	})
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("eiodev: %w", err)
	}
	d := &Device{backend: b, fe: fe, mountDir: fe.MountDir(), closeTimeout: opts.CloseTimeout}
	var st unix.Stat_t
	if err := unix.Stat(d.mountDir, &st); err != nil {
		return nil, errors.Join(fmt.Errorf("eiodev: stat mount %s: %w", d.mountDir, err), d.teardown(ctx))
	}
	d.connMajor, d.connMinor = unix.Major(st.Dev), unix.Minor(st.Dev)
	dev, err := fe.Expose(ctx, volumeID, opts.Size, b)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("eiodev: %w", err), d.teardown(ctx))
	}
	d.path = dev.Path
	if err := unix.Stat(filepath.Join(d.mountDir, volumeID), &st); err != nil {
		return nil, errors.Join(fmt.Errorf("eiodev: stat volume file: %w", err), d.teardown(ctx))
	}
	d.fileDev, d.fileIno = st.Dev, st.Ino
	return d, nil
}

// Path is the loop device, for example /dev/loop7.
func (d *Device) Path() string { return d.path }

// Backend is the Backend the device serves: its switch and counters.
func (d *Device) Backend() *Backend { return d.backend }

// Blank makes the device a new blank disk: the Backend discards everything and the loop device's
// buffer cache is dropped (a buffered reader sees zeros too). Nobody should have it open.
func (d *Device) Blank() error {
	if err := d.backend.Blank(); err != nil {
		return err
	}
	f, err := os.OpenFile(d.path, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("eiodev: open %s: %w", d.path, err)
	}
	defer f.Close()
	if err := unix.IoctlSetInt(int(f.Fd()), unix.BLKFLSBUF, 0); err != nil {
		return fmt.Errorf("eiodev: drop the buffer cache of %s: %w", d.path, err)
	}
	return nil
}

// Close heals the switch, removes the device and unmounts (see the package doc for what it does
// when that does not finish within Options.CloseTimeout or ctx). A device still held open by a
// process is reported in the error; the kernel detaches it at its last close.
func (d *Device) Close(ctx context.Context) error {
	d.backend.SetMode(Healthy) // fuseloop flushes the device before it detaches it
	return d.teardown(ctx)
}

// teardown closes the frontend within the bound, then forces what is left and closes the Backend.
func (d *Device) teardown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, d.closeTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.fe.Close(ctx) }()
	var errs []error
	select {
	case err := <-done:
		if err != nil {
			errs = append(errs, err)
		}
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("eiodev: the frontend at %s did not close within %v: aborted its FUSE connection", d.mountDir, d.closeTimeout))
		if err := d.abort(); err != nil {
			errs = append(errs, err)
		}
		// Every request waiting on the connection failed: Close returns now.
		select {
		case err := <-done:
			if err != nil {
				errs = append(errs, err)
			}
		case <-time.After(d.closeTimeout):
			errs = append(errs, fmt.Errorf("eiodev: the frontend at %s did not close after its connection was aborted", d.mountDir))
		}
	}
	if err := d.forceDetach(); err != nil {
		errs = append(errs, err)
	}
	if err := d.backend.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// abort aborts the device's FUSE connection (fuseloop.AbortConnection): every request waiting on
// it, and every later one, fails. A connection that ended already is not an error.
func (d *Device) abort() error {
	if err := fuseloop.AbortConnection(d.mountDir, d.connMajor, d.connMinor); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("eiodev: %w", err)
	}
	return nil
}

// forceDetach takes off whatever mount is left at the mount directory (lazily) and detaches the
// loop device if it is still bound to the volume file; it is a no-op after a clean Close.
func (d *Device) forceDetach() error {
	var errs []error
	if d.path != "" {
		if err := d.clearLoop(); err != nil {
			errs = append(errs, err)
		}
	}
	for range 8 { // mounts can be stacked; each MNT_DETACH takes one off
		if err := unix.Unmount(d.mountDir, unix.MNT_DETACH); err != nil {
			break
		}
	}
	return errors.Join(errs...)
}

// clearLoop detaches the loop device if it is still bound to the volume file (by device and
// inode number: the kernel may have given the number to someone else since). With autoclear set,
// the kernel detaches it at once or at its last close.
func (d *Device) clearLoop() error {
	f, err := os.OpenFile(d.path, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENXIO) || errors.Is(err, os.ErrNotExist) {
		return nil // gone already
	}
	if err != nil {
		return fmt.Errorf("eiodev: open %s: %w", d.path, err)
	}
	defer f.Close() // held: the number cannot be reused between the check and the ioctl
	info, err := unix.IoctlLoopGetStatus64(int(f.Fd()))
	if errors.Is(err, unix.ENXIO) {
		return nil // not bound
	}
	if err != nil {
		return fmt.Errorf("eiodev: LOOP_GET_STATUS64 %s: %w", d.path, err)
	}
	if info.Device != d.fileDev || info.Inode != d.fileIno {
		return nil // bound to someone else's file
	}
	if err := unix.IoctlSetInt(int(f.Fd()), unix.LOOP_CLR_FD, 0); err != nil && !errors.Is(err, unix.ENXIO) {
		return fmt.Errorf("eiodev: LOOP_CLR_FD %s: %w", d.path, err)
	}
	return nil
}
