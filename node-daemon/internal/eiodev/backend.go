package eiodev

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/cobaltstore/cobalt/node-daemon/frontend"
)

// Mode is what a Backend does with the calls it gets.
type Mode int32

const (
	// Healthy serves every call from the file.
	Healthy Mode = iota
	// FailWrites fails WriteAt, Flush and Trim with EIO; ReadAt reads.
	FailWrites
	// FailAll fails every call with EIO.
	FailAll
)

func (m Mode) String() string {
	switch m {
	case Healthy:
		return "healthy"
	case FailWrites:
		return "writes and flushes fail"
	case FailAll:
		return "every I/O fails"
	}
	return fmt.Sprintf("mode %d", int32(m))
}

// Failures counts the calls a Backend failed because of its mode, by kind.
type Failures struct {
	Reads, Writes, Flushes, Trims int64
}

// Total is the number of failed calls of every kind.
func (f Failures) Total() int64 { return f.Reads + f.Writes + f.Flushes + f.Trims }

// Backend is a frontend.Backend over a sparse file whose calls fail with EIO on command (SetMode).
// It is safe for concurrent use.
type Backend struct {
	file *os.File
	size int64
	mode atomic.Int32

	failedReads, failedWrites, failedFlushes, failedTrims atomic.Int64
}

var _ frontend.Backend = (*Backend)(nil)

// NewBackend creates (or truncates) the sparse file path of size bytes and returns a healthy
// Backend over it; it reads as zeros.
func NewBackend(path string, size int64) (*Backend, error) {
	if size <= 0 {
		return nil, fmt.Errorf("eiodev: size %d is not positive", size)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("eiodev: create backing file: %w", err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return nil, fmt.Errorf("eiodev: size backing file %s: %w", path, err)
	}
	return &Backend{file: f, size: size}, nil
}

// Size is the Backend's size in bytes.
func (b *Backend) Size() int64 { return b.size }

// SetMode switches the Backend to m for every call that starts from now on.
func (b *Backend) SetMode(m Mode) { b.mode.Store(int32(m)) }

// Mode returns the Backend's mode.
func (b *Backend) Mode() Mode { return Mode(b.mode.Load()) }

// Failures returns the calls failed so far because of the mode.
func (b *Backend) Failures() Failures {
	return Failures{Reads: b.failedReads.Load(), Writes: b.failedWrites.Load(), Flushes: b.failedFlushes.Load(), Trims: b.failedTrims.Load()}
}

// fail reports whether a call of a writing kind (or not) must fail in the current mode, and
// counts it in counter when it does.
func (b *Backend) fail(writing bool, counter *atomic.Int64) bool {
	switch b.Mode() {
	case FailAll:
	case FailWrites:
		if !writing {
			return false
		}
	default:
		return false
	}
	counter.Add(1)
	return true
}

// injected is the error of a failed call: EIO, saying what failed.
func injected(op string, off, n int64) error {
	return fmt.Errorf("eiodev: %s of %d bytes at %d failed (injected): %w", op, n, off, unix.EIO)
}

// ReadAt implements frontend.Backend.
func (b *Backend) ReadAt(ctx context.Context, p []byte, off int64) error {
	if b.fail(false, &b.failedReads) {
		return injected("read", off, int64(len(p)))
	}
	if err := b.check(off, int64(len(p))); err != nil {
		return err
	}
	n, err := b.file.ReadAt(p, off)
	if err != nil && (!errors.Is(err, io.EOF) || n < len(p)) {
		return fmt.Errorf("eiodev: read %d bytes at %d: %w", len(p), off, err)
	}
	return nil
}

// WriteAt implements frontend.Backend.
func (b *Backend) WriteAt(ctx context.Context, p []byte, off int64) error {
	if b.fail(true, &b.failedWrites) {
		return injected("write", off, int64(len(p)))
	}
	if err := b.check(off, int64(len(p))); err != nil {
		return err
	}
	if _, err := b.file.WriteAt(p, off); err != nil {
		return fmt.Errorf("eiodev: write %d bytes at %d: %w", len(p), off, err)
	}
	return nil
}

// Flush implements frontend.Backend: fdatasync of the file.
func (b *Backend) Flush(ctx context.Context) error {
	if b.fail(true, &b.failedFlushes) {
		return fmt.Errorf("eiodev: flush failed (injected): %w", unix.EIO)
	}
	if err := unix.Fdatasync(int(b.file.Fd())); err != nil {
		return fmt.Errorf("eiodev: fdatasync %s: %w", b.file.Name(), err)
	}
	return nil
}

// Trim implements frontend.Backend: it punches a hole in the file.
func (b *Backend) Trim(ctx context.Context, off, length int64) error {
	if b.fail(true, &b.failedTrims) {
		return injected("trim", off, length)
	}
	if err := b.check(off, length); err != nil {
		return err
	}
	return b.punch(off, length)
}

// Blank discards everything the Backend holds, whatever its mode: it reads as zeros after (a new
// blank disk in the same slot).
func (b *Backend) Blank() error { return b.punch(0, b.size) }

func (b *Backend) punch(off, length int64) error {
	if length == 0 {
		return nil
	}
	if err := unix.Fallocate(int(b.file.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, length); err != nil {
		return fmt.Errorf("eiodev: punch hole of %d bytes at %d: %w", length, off, err)
	}
	return nil
}

func (b *Backend) check(off, n int64) error {
	if off < 0 || n < 0 || off+n > b.size {
		return fmt.Errorf("eiodev: [%d, %d) is outside the device of %d bytes", off, off+n, b.size)
	}
	return nil
}

// Close closes the file (it is left on disk).
func (b *Backend) Close() error {
	if err := b.file.Close(); err != nil {
		return fmt.Errorf("eiodev: close backing file: %w", err)
	}
	return nil
}
