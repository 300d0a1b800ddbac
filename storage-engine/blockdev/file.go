package blockdev

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DefaultQueueDepth is the number of I/Os a FileDevice runs at once when Options.QueueDepth is 0.
const DefaultQueueDepth = 32

// MaxQueueDepth is the largest Options.QueueDepth Open accepts.
const MaxQueueDepth = 4096

// DefaultFileBlockSize is the block size of a FileDevice backed by a regular file.
const DefaultFileBlockSize = 4096

// Options configure Open. The zero value opens an existing file or block device read-write with
// O_DIRECT and DefaultQueueDepth.
type Options struct {
	// QueueDepth bounds the number of reads, writes and flushes in flight at once; callers beyond it
	// wait. 0 means DefaultQueueDepth; at most MaxQueueDepth.
	QueueDepth int
	// ReadOnly opens the device read-only: WriteAt fails with ErrReadOnly and Flush does nothing.
	ReadOnly bool
	// Exclusive opens a block device with O_EXCL, which fails (EBUSY) if it is mounted or held by
	// another exclusive opener. Ignored for regular files.
	Exclusive bool
	// Buffered opens without O_DIRECT, going through the page cache. Only for filesystems that
	// refuse O_DIRECT in development; Flush (fdatasync) still makes writes durable.
	Buffered bool
	// CreateSize, when > 0 and path does not exist, creates a sparse regular file of this size
	// (rounded down to DefaultFileBlockSize) before opening it.
	CreateSize int64
	// CreateAllocated, with CreateSize, writes every block of the file Open creates (zeros, with
	// direct I/O, then a flush) instead of leaving it sparse. Benchmarks use it for the files behind
	// their loop devices: a first write into a hole of a sparse file makes the host file system
	// allocate blocks and journal them at the next flush, a cost a real device does not have, and
	// one that falls on whoever writes where nothing was written before (a store's newly
	// allocated space) and not on a baseline that rewrites one region. An existing file is left
	// as it is.
	CreateAllocated bool
}

// Info describes an open FileDevice.
type Info struct {
	Path              string
	BlockDevice       bool  // a block device rather than a regular file
	Size              int64 // usable bytes (a multiple of LogicalBlockSize)
	LogicalBlockSize  int
	PhysicalBlockSize int
	Rotational        bool
	Direct            bool // opened with O_DIRECT
	QueueDepth        int
}

// FileDevice is a Device backed by a regular file or a block device, doing pread/pwrite with at most
// QueueDepth operations in flight. It is safe for concurrent use; Close waits for in-flight I/O.
type FileDevice struct {
	f        *os.File
	fd       int
	info     Info
	readOnly bool
	sem      chan struct{} // one token per I/O in flight
	closed   atomic.Bool
}

var _ Device = (*FileDevice)(nil)

// Open opens path, a regular file or a block device, as a Device. For a block device the size comes
// from the BLKGETSIZE64 ioctl and the logical/physical block size and rotational flag from sysfs
// (/sys/dev/block/M:m/queue). For a regular file the block size is 4096, the size is the file size
// rounded down to it, and rotational is that of the device holding the file.
func Open(path string, opts Options) (Device, error) {
	return OpenFile(path, opts)
}

// OpenFile is Open returning the concrete type, for callers that want Info.
func OpenFile(path string, opts Options) (*FileDevice, error) {
	if opts.QueueDepth < 0 || opts.QueueDepth > MaxQueueDepth {
		return nil, fmt.Errorf("blockdev: open %s: queue depth %d outside [0, %d]", path, opts.QueueDepth, MaxQueueDepth)
	}
	if opts.QueueDepth == 0 {
		opts.QueueDepth = DefaultQueueDepth
	}
	created := false
	if opts.CreateSize > 0 {
		var err error
		if created, err = createSparse(path, opts.CreateSize); err != nil {
			return nil, err
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("blockdev: open %s: %w", path, err)
	}
	isBlock := st.Mode()&fs.ModeDevice != 0 && st.Mode()&fs.ModeCharDevice == 0
	if !isBlock && !st.Mode().IsRegular() {
		return nil, fmt.Errorf("blockdev: open %s: not a regular file or block device (mode %s)", path, st.Mode())
	}
	flags := unix.O_CLOEXEC
	if opts.ReadOnly {
		flags |= unix.O_RDONLY
	} else {
		flags |= unix.O_RDWR
	}
	if !opts.Buffered {
		flags |= unix.O_DIRECT
	}
	if isBlock && opts.Exclusive {
		flags |= unix.O_EXCL
	}
	fd, err := unix.Open(path, flags, 0)
	if err != nil {
		if errors.Is(err, unix.EINVAL) && !opts.Buffered {
			return nil, fmt.Errorf("blockdev: open %s with O_DIRECT: %w (the filesystem may not support direct I/O; Options.Buffered is for development only)", path, err)
		}
		return nil, fmt.Errorf("blockdev: open %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	d := &FileDevice{f: f, fd: fd, readOnly: opts.ReadOnly, sem: make(chan struct{}, opts.QueueDepth)}
	d.info = Info{Path: path, BlockDevice: isBlock, Direct: !opts.Buffered, QueueDepth: opts.QueueDepth}
	if isBlock {
		err = d.probeBlockDevice()
	} else {
		err = d.probeRegularFile()
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("blockdev: open %s: %w", path, err)
	}
	if created && opts.CreateAllocated {
		if err := d.writeZeros(); err != nil {
			_ = d.Close()
			return nil, fmt.Errorf("blockdev: allocate %s: %w", path, err)
		}
	}
	return d, nil
}

// createSparse creates path as a sparse file of size bytes (rounded down to DefaultFileBlockSize)
// unless it exists, and reports whether it created it.
func createSparse(path string, size int64) (bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("blockdev: create %s: %w", path, err)
	}
	size -= size % DefaultFileBlockSize
	if err := f.Truncate(size); err != nil {
		_ = f.Close()
		return false, fmt.Errorf("blockdev: create %s: size %d: %w", path, size, err)
	}
	if err := f.Close(); err != nil {
		return false, fmt.Errorf("blockdev: create %s: %w", path, err)
	}
	return true, nil
}

// allocateChunk is the size of the writes of writeZeros.
const allocateChunk = 4 << 20

// writeZeros writes zeros over the whole device and flushes it (Options.CreateAllocated).
func (d *FileDevice) writeZeros() error {
	buf := AlignedBuffer(allocateChunk)
	for off := int64(0); off < d.info.Size; off += allocateChunk {
		if _, err := d.WriteAt(buf[:min(allocateChunk, d.info.Size-off)], off); err != nil {
			return err
		}
	}
	return d.Flush()
}

func (d *FileDevice) probeBlockDevice() error {
	var st unix.Stat_t
	if err := unix.Fstat(d.fd, &st); err != nil {
		return fmt.Errorf("fstat: %w", err)
	}
	size, err := ioctlBlkGetSize64(d.fd)
	if err != nil {
		return fmt.Errorf("ioctl BLKGETSIZE64: %w", err)
	}
	props, err := readQueueProps("/sys", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	if err != nil {
		// No sysfs (e.g. a container without /sys): fall back to the block-size ioctls.
		lbs, err1 := unix.IoctlGetInt(d.fd, unix.BLKSSZGET)
		pbs, err2 := unix.IoctlGetInt(d.fd, unix.BLKPBSZGET)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("block size: %w", errors.Join(err, err1, err2))
		}
		props = queueProps{logicalBlockSize: lbs, physicalBlockSize: pbs}
	}
	if !validBlockSize(props.logicalBlockSize) {
		return fmt.Errorf("unsupported logical block size %d", props.logicalBlockSize)
	}
	d.info.LogicalBlockSize = props.logicalBlockSize
	d.info.PhysicalBlockSize = max(props.physicalBlockSize, props.logicalBlockSize)
	d.info.Rotational = props.rotational
	d.info.Size = int64(size) - int64(size)%int64(props.logicalBlockSize)
	if d.info.Size <= 0 {
		return fmt.Errorf("block device has size %d", size)
	}
	return nil
}

func (d *FileDevice) probeRegularFile() error {
	var st unix.Stat_t
	if err := unix.Fstat(d.fd, &st); err != nil {
		return fmt.Errorf("fstat: %w", err)
	}
	d.info.LogicalBlockSize = DefaultFileBlockSize
	d.info.PhysicalBlockSize = DefaultFileBlockSize
	d.info.Rotational = rotationalOf("/sys", unix.Major(st.Dev), unix.Minor(st.Dev))
	d.info.Size = st.Size - st.Size%DefaultFileBlockSize
	if d.info.Size <= 0 {
		return fmt.Errorf("file is smaller than one %d-byte block (size %d); create it first, e.g. truncate -s 10G", DefaultFileBlockSize, st.Size)
	}
	return nil
}

// Info returns the device's properties.
func (d *FileDevice) Info() Info { return d.info }

// acquire takes a queue slot, or fails if the device is closed.
func (d *FileDevice) acquire(op string, off int64) error {
	if d.closed.Load() {
		return fmt.Errorf("%s %s at %d: %w", op, d.info.Path, off, ErrClosed)
	}
	d.sem <- struct{}{}
	if d.closed.Load() { // Close started while we waited: it is waiting for our slot.
		<-d.sem
		return fmt.Errorf("%s %s at %d: %w", op, d.info.Path, off, ErrClosed)
	}
	return nil
}

func (d *FileDevice) release() { <-d.sem }

// ReadAt implements Device.
func (d *FileDevice) ReadAt(p []byte, off int64) (int, error) {
	if err := checkIO(d.info.Path, "read", p, off, d.info.Size, d.info.LogicalBlockSize); err != nil {
		return 0, err
	}
	if err := d.acquire("read", off); err != nil {
		return 0, err
	}
	defer d.release()
	done := 0
	for done < len(p) {
		n, err := unix.Pread(d.fd, p[done:], off+int64(done))
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return done, fmt.Errorf("read %s at %d (%d bytes): %w", d.info.Path, off, len(p), err)
		case n == 0:
			return done, fmt.Errorf("read %s at %d (%d bytes): %w", d.info.Path, off, len(p), io.ErrUnexpectedEOF)
		}
		done += n
	}
	return done, nil
}

// WriteAt implements Device.
func (d *FileDevice) WriteAt(p []byte, off int64) (int, error) {
	if d.readOnly {
		return 0, fmt.Errorf("write %s at %d: %w", d.info.Path, off, ErrReadOnly)
	}
	if err := checkIO(d.info.Path, "write", p, off, d.info.Size, d.info.LogicalBlockSize); err != nil {
		return 0, err
	}
	if err := d.acquire("write", off); err != nil {
		return 0, err
	}
	defer d.release()
	done := 0
	for done < len(p) {
		n, err := unix.Pwrite(d.fd, p[done:], off+int64(done))
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return done, fmt.Errorf("write %s at %d (%d bytes): %w", d.info.Path, off, len(p), err)
		case n == 0:
			return done, fmt.Errorf("write %s at %d (%d bytes): %w", d.info.Path, off, len(p), io.ErrShortWrite)
		}
		done += n
	}
	return done, nil
}

// Flush implements Device with fdatasync. On a read-only device it does nothing.
func (d *FileDevice) Flush() error {
	if d.readOnly {
		if d.closed.Load() {
			return fmt.Errorf("flush %s: %w", d.info.Path, ErrClosed)
		}
		return nil
	}
	if err := d.acquire("flush", 0); err != nil {
		return err
	}
	defer d.release()
	for {
		err := unix.Fdatasync(d.fd)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("flush %s: fdatasync: %w", d.info.Path, err)
		}
		return nil
	}
}

// Size implements Device.
func (d *FileDevice) Size() int64 { return d.info.Size }

// BlockSize implements Device: the logical block size.
func (d *FileDevice) BlockSize() int { return d.info.LogicalBlockSize }

// Rotational implements Device.
func (d *FileDevice) Rotational() bool { return d.info.Rotational }

// Close implements Device. It waits for I/O in flight, then closes the file; later calls fail with
// ErrClosed. It does not flush.
func (d *FileDevice) Close() error {
	if d.closed.Swap(true) {
		return fmt.Errorf("close %s: %w", d.info.Path, ErrClosed)
	}
	for range cap(d.sem) { // wait for every in-flight I/O to give back its slot
		d.sem <- struct{}{}
	}
	err := d.f.Close()
	for range cap(d.sem) {
		<-d.sem
	}
	if err != nil {
		return fmt.Errorf("close %s: %w", d.info.Path, err)
	}
	return nil
}

// ioctlBlkGetSize64 returns a block device's size in bytes (BLKGETSIZE64).
func ioctlBlkGetSize64(fd int) (uint64, error) {
	var size uint64
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(unix.BLKGETSIZE64), uintptr(unsafe.Pointer(&size)))
	if errno != 0 {
		return 0, errno
	}
	return size, nil
}
