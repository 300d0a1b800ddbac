package cache

import (
	"fmt"
	"unsafe"
)

// BufferState is the state of a cached data buffer.
type BufferState uint8

const (
	// BufferWriting buffers hold data of a write whose transaction has not committed yet.
	// They are on no list and cannot be evicted.
	BufferWriting BufferState = iota + 1
	// BufferClean buffers hold data that is on the device; they are evictable.
	BufferClean
)

func (s BufferState) String() string {
	switch s {
	case BufferWriting:
		return "writing"
	case BufferClean:
		return "clean"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Range is a byte range of an object.
type Range struct {
	Off, Len uint64
}

// End is Off + Len.
func (r Range) End() uint64 { return r.Off + r.Len }

// bufferKey names a clean buffer in its shard's index and, once evicted, its A1out ghost.
// Buffers of an object never overlap, so no two share a start offset.
type bufferKey struct {
	obj ObjectKey
	off uint64
}

// buffer is a cached extent of an object's data. Its data is owned by the cache and never
// modified in place.
type buffer struct {
	off   uint64
	data  []byte
	state BufferState
	// seq is the write sequence of a writing buffer (FinishWrite(seq) completes it).
	seq uint64
	// nocache drops the buffer when its write finishes instead of keeping it clean.
	nocache bool
	space   *bufferSpace
	// e is the buffer's cache entry while clean, nil while writing.
	e *entry[bufferKey, *buffer]
}

func (b *buffer) end() uint64 { return b.off + uint64(len(b.data)) }

// bufferOverhead estimates the memory of a buffer besides its data: the buffer, its cache
// entry, its index slot and its slot in the BufferSpace.
const bufferOverhead = int64(unsafe.Sizeof(buffer{})) + int64(unsafe.Sizeof(entry[bufferKey, *buffer]{})) +
	2*int64(unsafe.Sizeof(bufferKey{})) + 3*int64(unsafe.Sizeof(uintptr(0)))

// bufferBytes is the memory a buffer of n data bytes accounts.
func bufferBytes(n int) int64 { return int64(n) + bufferOverhead }
