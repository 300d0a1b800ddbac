package fuseloop

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/cobaltstore/cobalt/node-daemon/frontend"
)

// Frontend serves volumes as files of one FUSE mount and exposes each through a loop device.
type Frontend struct {
	opts     Options
	log      logr.Logger
	root     *rootNode
	server   *fuse.Server
	recovery Recovery
	ioFlush  bool

	// serveCtx is the context of every Backend call; Close cancels it once nothing is served.
	serveCtx    context.Context
	cancelServe context.CancelFunc

	mu struct {
		sync.Mutex
		vols   map[string]*volume
		closed bool
	}
}

var _ frontend.Frontend = (*Frontend)(nil)

// volume is the control state of one exposed volume. Control operations on it (Expose, Resize,
// Remove) serialize on opMu; the I/O path never takes it. A volume leaves Frontend.mu.vols only
// under its opMu, after which it is dead and a waiter must look the ID up again.
type volume struct {
	id   string
	opMu sync.Mutex
	// device is what Device returns; set and cleared under opMu, read without it.
	device atomic.Pointer[frontend.Device]

	// REQUIRES: opMu for the fields below.
	dead bool
	file *volumeFile
	loop *loopDevice
	// detaching: Remove asked the kernel to detach the device but someone still has it open;
	// this process no longer holds it, and the kernel detaches it at its last close.
	detaching bool
}

// New mounts the FUSE file system at opts.MountDir after cleaning up what a previous process
// that died there left behind (see Recovery), and returns a Frontend that serves it.
func New(ctx context.Context, opts Options) (*Frontend, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	log := opts.Log
	f := &Frontend{opts: opts, log: log}
	f.mu.vols = make(map[string]*volume)

	if !opts.DisableIOFlusher {
		if err := setIOFlusher(); err != nil {
			log.Info("serving without PR_SET_IO_FLUSHER: memory reclaim may wait on this daemon's own I/O", "reason", err.Error())
		} else {
			f.ioFlush = true
		}
	}

	// The parent must resolve (a dead mount at MountDir itself fails every stat of it).
	parent, err := filepath.EvalSymlinks(filepath.Dir(opts.MountDir))
	if err != nil {
		return nil, fmt.Errorf("resolve parent of %s: %w", opts.MountDir, err)
	}
	dir := filepath.Join(parent, filepath.Base(opts.MountDir))
	f.opts.MountDir = dir

	f.recovery, err = recoverMountDir(ctx, dir, opts.DetachTimeout, opts.StuckTimeout)
	if err != nil {
		return nil, fmt.Errorf("recover %s: %w", dir, err)
	}
	if r := f.recovery; r.DeadMounts > 0 || len(r.Detached) > 0 || len(r.Busy) > 0 {
		log.Info("cleaned up after a previous process", "mountDir", dir, "abortedConnections", r.Aborted, "deadMounts", r.DeadMounts,
			"detached", r.Detached, "busy", r.Busy)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("create mount dir: %w", err)
	}

	f.serveCtx, f.cancelServe = context.WithCancel(context.WithoutCancel(ctx))
	f.root = &rootNode{blockSize: opts.BlockSize}
	zero := time.Duration(0)
	// No process may be started between go-fuse's open of /dev/fuse (without O_CLOEXEC) and
	// closeFuseFDsOnExec: exec takes ForkLock for writing.
	syscall.ForkLock.RLock()
	f.server, err = fs.Mount(dir, f.root, &fs.Options{
		MountOptions: fuse.MountOptions{
			FsName:            "cobalt",
			Name:              "cobalt",
			DirectMountStrict: true,
			MaxWrite:          opts.MaxWrite,
			MaxBackground:     opts.MaxBackground,
			DisableXAttrs:     true,
			// Replies are byte slices; splicing them buys nothing, and a 1 MiB reply does not
			// fit the default maximum pipe size anyway.
			DisableSplice: true,
			// The daemon must see every I/O: never let the kernel pass a file through.
			DisabledCapabilities: fuse.CAP_PASSTHROUGH,
			// Asynchronous direct I/O: the loop device's AIO becomes many requests in flight
			// instead of one at a time.
			ExtraCapabilities: fuse.CAP_ASYNC_DIO,
		},
		// Sizes change under the kernel (Resize) and files come and go (Expose, Remove): no
		// caching of attributes or names. Lookups and GETATTRs are rare next to I/O.
		EntryTimeout:    &zero,
		AttrTimeout:     &zero,
		NegativeTimeout: &zero,
	})
	cloexecErr := closeFuseFDsOnExec()
	syscall.ForkLock.RUnlock()
	if err != nil {
		f.cancelServe()
		return nil, fmt.Errorf("mount FUSE at %s: %w", dir, err)
	}
	if cloexecErr != nil {
		// A child started later would keep the connection up after this process died.
		return nil, errors.Join(fmt.Errorf("mount FUSE at %s: %w", dir, cloexecErr), f.Close(ctx))
	}
	return f, nil
}

// Recovery reports what New cleaned up after a previous process at MountDir.
func (f *Frontend) Recovery() Recovery { return f.recovery }

// IOFlusher reports whether the process runs with PR_SET_IO_FLUSHER on all its threads.
func (f *Frontend) IOFlusher() bool { return f.ioFlush }

// MountDir is the directory the FUSE file system is mounted at (symbolic links resolved).
func (f *Frontend) MountDir() string { return f.opts.MountDir }

// Expose implements frontend.Frontend. size must be a multiple of Options.BlockSize. Exposing an
// exposed volume with a larger size grows it as Resize does; a smaller size is an error.
func (f *Frontend) Expose(ctx context.Context, volumeID string, size int64, b frontend.Backend) (frontend.Device, error) {
	if err := validateVolumeID(volumeID); err != nil {
		return frontend.Device{}, err
	}
	if err := f.validateSize(size); err != nil {
		return frontend.Device{}, fmt.Errorf("expose %s: %w", volumeID, err)
	}
	if b == nil {
		return frontend.Device{}, fmt.Errorf("expose %s: nil backend", volumeID)
	}
	v, err := f.lockVolume(volumeID, true)
	if err != nil {
		return frontend.Device{}, fmt.Errorf("expose %s: %w", volumeID, err)
	}
	defer v.opMu.Unlock()

	if v.loop == nil {
		dev, err := f.attach(ctx, v, size, b)
		if err != nil {
			f.dropLocked(v)
			return frontend.Device{}, fmt.Errorf("expose %s: %w", volumeID, err)
		}
		return dev, nil
	}
	if v.detaching {
		held, err := v.loop.reopen()
		if err != nil {
			return frontend.Device{}, fmt.Errorf("expose %s: %w", volumeID, err)
		}
		if !held {
			// The kernel detached it since Remove: serve the volume on a new device.
			f.unserve(v)
			dev, err := f.attach(ctx, v, size, b)
			if err != nil {
				f.dropLocked(v)
				return frontend.Device{}, fmt.Errorf("expose %s: %w", volumeID, err)
			}
			return dev, nil
		}
		v.detaching = false
	}
	cur := v.file.state.Load().size
	if size < cur {
		return frontend.Device{}, fmt.Errorf("expose %s: size %d is smaller than the exposed %d (volumes do not shrink)", volumeID, size, cur)
	}
	v.file.state.Store(&volumeState{backend: b, size: cur})
	if size > cur {
		return f.resizeLocked(ctx, v, size)
	}
	return *v.device.Load(), nil
}

// attach creates the volume's file and binds a loop device to it.
// REQUIRES: v.opMu, v.loop == nil.
func (f *Frontend) attach(ctx context.Context, v *volume, size int64, b frontend.Backend) (frontend.Device, error) {
	file := &volumeFile{id: v.id, ctx: f.serveCtx, log: f.log}
	file.state.Store(&volumeState{backend: b, size: size})
	child := f.root.NewPersistentInode(ctx, file, fs.StableAttr{Mode: unix.S_IFREG})
	f.root.AddChild(v.id, child, true)
	v.file = file

	path := filepath.Join(f.opts.MountDir, v.id)
	backing, err := os.OpenFile(path, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		f.unserve(v)
		return frontend.Device{}, fmt.Errorf("open volume file: %w", err)
	}
	loop, err := attachLoop(ctx, backing, f.opts.BlockSize)
	backing.Close() // the loop device holds its own reference
	if err != nil {
		f.unserve(v)
		return frontend.Device{}, err
	}
	v.loop = loop
	dev := frontend.Device{VolumeID: v.id, Path: loop.path(), Size: size}
	v.device.Store(&dev)
	f.log.V(1).Info("exposed volume", "volume", v.id, "device", dev.Path, "size", size)
	return dev, nil
}

// Resize implements frontend.Frontend: the file grows first, then LOOP_SET_CAPACITY makes the
// kernel read its size again, online.
func (f *Frontend) Resize(ctx context.Context, volumeID string, size int64) (frontend.Device, error) {
	if err := f.validateSize(size); err != nil {
		return frontend.Device{}, fmt.Errorf("resize %s: %w", volumeID, err)
	}
	v, err := f.lockVolume(volumeID, false)
	if err != nil {
		return frontend.Device{}, fmt.Errorf("resize %s: %w", volumeID, err)
	}
	if v == nil {
		return frontend.Device{}, fmt.Errorf("resize %s: %w", volumeID, frontend.ErrNotExposed)
	}
	defer v.opMu.Unlock()
	if v.detaching {
		return frontend.Device{}, fmt.Errorf("resize %s: being removed: %w", volumeID, frontend.ErrNotExposed)
	}
	cur := v.file.state.Load().size
	if size < cur {
		return frontend.Device{}, fmt.Errorf("resize %s: size %d is smaller than %d (volumes do not shrink)", volumeID, size, cur)
	}
	if size == cur {
		return *v.device.Load(), nil
	}
	return f.resizeLocked(ctx, v, size)
}

// REQUIRES: v.opMu, v exposed and held.
func (f *Frontend) resizeLocked(ctx context.Context, v *volume, size int64) (frontend.Device, error) {
	old := v.file.state.Load()
	v.file.state.Store(&volumeState{backend: old.backend, size: size})
	// Attributes are never cached (AttrTimeout 0): this stat makes the kernel fetch the new size
	// into the inode, which the loop device reads on LOOP_SET_CAPACITY.
	if _, err := os.Stat(filepath.Join(f.opts.MountDir, v.id)); err != nil {
		return frontend.Device{}, fmt.Errorf("resize %s: refresh size of volume file: %w", v.id, err)
	}
	if err := v.loop.setCapacity(); err != nil {
		return frontend.Device{}, fmt.Errorf("resize %s: %w", v.id, err)
	}
	got, err := v.loop.size()
	if err != nil {
		return frontend.Device{}, fmt.Errorf("resize %s: %w", v.id, err)
	}
	if got != size {
		return frontend.Device{}, fmt.Errorf("resize %s: %s has %d bytes after LOOP_SET_CAPACITY, want %d", v.id, v.loop.path(), got, size)
	}
	dev := *v.device.Load()
	dev.Size = size
	v.device.Store(&dev)
	return dev, nil
}

// Remove implements frontend.Frontend. If the device is still open elsewhere (mounted), it stays
// bound and served, Remove returns an error wrapping frontend.ErrDeviceBusy, and the kernel
// detaches it when its last user closes it; a later Remove then completes.
func (f *Frontend) Remove(ctx context.Context, volumeID string) error {
	v, err := f.lockVolume(volumeID, false)
	if err != nil {
		if errors.Is(err, errClosed) {
			return nil // Close removed everything
		}
		return fmt.Errorf("remove %s: %w", volumeID, err)
	}
	if v == nil {
		return nil
	}
	defer v.opMu.Unlock()
	return f.removeLocked(ctx, v)
}

// REQUIRES: v.opMu.
func (f *Frontend) removeLocked(ctx context.Context, v *volume) error {
	if !v.detaching {
		if err := v.loop.flush(); err != nil {
			return fmt.Errorf("remove %s: %w", v.id, err)
		}
		freed, err := v.loop.release(ctx, f.opts.DetachTimeout)
		// The descriptor is closed even on error: from here on the kernel decides.
		v.detaching = true
		if err != nil {
			return fmt.Errorf("remove %s: %w", v.id, err)
		}
		if !freed {
			return fmt.Errorf("remove %s: %s: %w", v.id, v.loop.path(), frontend.ErrDeviceBusy)
		}
	} else {
		bound, err := v.loop.boundToBacking()
		if err != nil {
			return fmt.Errorf("remove %s: %w", v.id, err)
		}
		if bound {
			return fmt.Errorf("remove %s: %s: %w", v.id, v.loop.path(), frontend.ErrDeviceBusy)
		}
	}
	f.unserve(v)
	f.dropLocked(v)
	f.log.V(1).Info("removed volume", "volume", v.id)
	return nil
}

// unserve takes the volume's file out of the file system; requests still in flight on it fail
// with EIO. REQUIRES: v.opMu.
func (f *Frontend) unserve(v *volume) {
	if v.file == nil {
		return
	}
	v.file.state.Store(&volumeState{size: v.file.state.Load().size})
	f.root.RmChild(v.id)
	v.file, v.loop, v.detaching = nil, nil, false
	v.device.Store(nil)
}

// dropLocked forgets v. REQUIRES: v.opMu.
func (f *Frontend) dropLocked(v *volume) {
	v.dead = true
	f.mu.Lock()
	if f.mu.vols[v.id] == v {
		delete(f.mu.vols, v.id)
	}
	f.mu.Unlock()
}

// Device implements frontend.Frontend.
func (f *Frontend) Device(volumeID string) (frontend.Device, bool) {
	f.mu.Lock()
	v := f.mu.vols[volumeID]
	f.mu.Unlock()
	if v == nil {
		return frontend.Device{}, false
	}
	d := v.device.Load()
	if d == nil {
		return frontend.Device{}, false
	}
	return *d, true
}

var errClosed = errors.New("frontend is closed")

// lockVolume returns the volume with its opMu held; with create it makes an entry for a volume
// that has none, else it returns nil for one.
func (f *Frontend) lockVolume(id string, create bool) (*volume, error) {
	for {
		f.mu.Lock()
		if f.mu.closed {
			f.mu.Unlock()
			return nil, errClosed
		}
		v := f.mu.vols[id]
		if v == nil {
			if !create {
				f.mu.Unlock()
				return nil, nil
			}
			v = &volume{id: id}
			f.mu.vols[id] = v
		}
		f.mu.Unlock()
		v.opMu.Lock()
		if !v.dead {
			return v, nil
		}
		v.opMu.Unlock() // removed while we waited: look again
	}
}

// Close implements frontend.Frontend: it removes every volume and unmounts. Devices still in use
// are reported in the error (wrapping frontend.ErrDeviceBusy); the mount is then detached lazily
// and keeps serving them until their last user closes them or the process exits, after which
// they fail with EIO until the kernel detaches them at their last close.
func (f *Frontend) Close(ctx context.Context) error {
	f.mu.Lock()
	if f.mu.closed {
		f.mu.Unlock()
		return nil
	}
	f.mu.closed = true
	vols := make([]*volume, 0, len(f.mu.vols))
	for _, v := range f.mu.vols {
		vols = append(vols, v)
	}
	f.mu.Unlock()

	var errs []error
	for _, v := range vols {
		v.opMu.Lock()
		if !v.dead {
			if err := f.removeLocked(ctx, v); err != nil {
				errs = append(errs, err)
			}
		}
		v.opMu.Unlock()
	}
	if err := f.server.Unmount(); err != nil {
		// Something still has a volume file open: a busy device, or someone who opened a file
		// in the mount. Detach lazily; the server serves on until the last file is closed.
		if derr := unix.Unmount(f.opts.MountDir, unix.MNT_DETACH); derr != nil {
			errs = append(errs, fmt.Errorf("unmount %s: %w (lazily: %w)", f.opts.MountDir, err, derr))
		} else if len(errs) == 0 {
			errs = append(errs, fmt.Errorf("unmount %s: %w; detached lazily, still serving open files", f.opts.MountDir, err))
		}
		return errors.Join(errs...)
	}
	f.cancelServe()
	return errors.Join(errs...)
}

func (f *Frontend) validateSize(size int64) error {
	if size <= 0 || size%int64(f.opts.BlockSize) != 0 {
		return fmt.Errorf("size %d is not a positive multiple of the block size %d", size, f.opts.BlockSize)
	}
	return nil
}

// validateVolumeID refuses IDs that cannot be a file name in the mount.
func validateVolumeID(id string) error {
	switch {
	case id == "", id == ".", id == "..":
		return fmt.Errorf("volume ID %q is not a file name", id)
	case len(id) > 255:
		return fmt.Errorf("volume ID %.40q... is longer than 255 bytes", id)
	case strings.ContainsAny(id, "/\x00"):
		return fmt.Errorf("volume ID %q contains / or NUL", id)
	}
	return nil
}
