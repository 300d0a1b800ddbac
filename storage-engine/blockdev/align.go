package blockdev

import (
	"fmt"
	"unsafe"
)

// Alignment is the memory alignment of buffers returned by AlignedBuffer. It satisfies O_DIRECT
// for every logical block size up to 4096 bytes.
const Alignment = 4096

// AlignedBuffer returns a zeroed slice of n bytes whose first byte sits at an address that is a
// multiple of Alignment, as O_DIRECT requires. Sub-slices that start at a multiple of Alignment
// are aligned too. n <= 0 yields an empty (non-nil) slice. The slice's capacity equals n, so an
// append never silently moves it to unaligned memory.
func AlignedBuffer(n int) []byte {
	if n <= 0 {
		return []byte{}
	}
	if n%Alignment == 0 {
		// Go's allocator places objects of these sizes at multiples of their size class, which
		// are page aligned; take the plain allocation when it is aligned (it is, in practice)
		// rather than paying for Alignment bytes of padding on every buffer.
		if b := make([]byte, n); IsAligned(b, Alignment) {
			return b
		}
	}
	raw := make([]byte, n+Alignment)
	off := 0
	if rem := int(uintptr(unsafe.Pointer(&raw[0])) & (Alignment - 1)); rem != 0 {
		off = Alignment - rem
	}
	return raw[off : off+n : off+n]
}

// IsAligned reports whether p's first byte sits at a multiple of align bytes (align must be a
// power of two). An empty slice is considered aligned.
func IsAligned(p []byte, align int) bool {
	if len(p) == 0 || align <= 1 {
		return true
	}
	return uintptr(unsafe.Pointer(&p[0]))&uintptr(align-1) == 0
}

// checkIO validates one I/O request against a device of the given size and block size. name
// identifies the device in the error. The buffer's address must be aligned to min(blockSize,
// Alignment) so that code tested against the in-memory device also works with O_DIRECT.
func checkIO(name, op string, p []byte, off, size int64, blockSize int) error {
	bs := int64(blockSize)
	switch {
	case off < 0 || off%bs != 0:
		return fmt.Errorf("%s %s: offset %d is not a multiple of block size %d: %w", op, name, off, blockSize, ErrMisaligned)
	case int64(len(p))%bs != 0:
		return fmt.Errorf("%s %s: length %d at offset %d is not a multiple of block size %d: %w", op, name, len(p), off, blockSize, ErrMisaligned)
	case !IsAligned(p, min(blockSize, Alignment)):
		return fmt.Errorf("%s %s: buffer at offset %d is not %d-byte aligned in memory (use AlignedBuffer): %w", op, name, off, min(blockSize, Alignment), ErrMisaligned)
	case off > size || int64(len(p)) > size-off:
		return fmt.Errorf("%s %s: [%d, %d) exceeds device size %d: %w", op, name, off, off+int64(len(p)), size, ErrOutOfRange)
	}
	return nil
}

// validBlockSize reports whether bs is a power of two between 512 and 64 KiB.
func validBlockSize(bs int) bool {
	return bs >= 512 && bs <= 64<<10 && bs&(bs-1) == 0
}
