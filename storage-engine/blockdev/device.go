// Package blockdev is Cobalt's block device layer: the only code that touches the raw device.
//
// A Device is addressed in bytes, but every I/O must be aligned: offsets and lengths are multiples
// of BlockSize(), and buffers handed to a real device come from AlignedBuffer so that O_DIRECT
// accepts them. Writes are not durable until Flush returns; a power cut may lose or tear any write
// that was not followed by a successful Flush. Implementations are safe for concurrent use.
//
// Implementations: FileDevice (Open: a regular file or block device with O_DIRECT, pread/pwrite
// with at most Options.QueueDepth I/Os in flight, Flush = fdatasync) and MemDevice (NewMem: sparse,
// in memory, for tests). Package faultdev wraps a MemDevice with a volatile write cache, power cuts
// and injected errors; package blockdevtest is the conformance suite every Device passes.
//
// Scheduling: I/O blocks the calling goroutine's thread in pread/pwrite, so processes that drive
// many I/Os at once should run with GOMAXPROCS of at least MinIOProcs (RaiseGOMAXPROCS, procs.go).
//
// Errors wrap ErrMisaligned, ErrOutOfRange, ErrClosed or ErrReadOnly (errors.Is), or the system
// error (e.g. syscall.EIO), and name the device and offset. Bad input never panics.
package blockdev

// Device is a raw block device (or a file standing in for one).
type Device interface {
	// ReadAt reads len(p) bytes at off. len(p) and off are multiples of BlockSize().
	ReadAt(p []byte, off int64) (int, error)
	// WriteAt writes p at off. len(p) and off are multiples of BlockSize(). Not durable until Flush.
	WriteAt(p []byte, off int64) (int, error)
	// Flush makes every write that completed before the call durable (fdatasync).
	Flush() error
	// Size is the usable size of the device in bytes.
	Size() int64
	// BlockSize is the logical block size: the unit of alignment for I/O.
	BlockSize() int
	// Rotational reports whether the device is a spinning disk (it picks defaults such as cache shards).
	Rotational() bool
	// Close releases the device. It does not imply Flush.
	Close() error
}
