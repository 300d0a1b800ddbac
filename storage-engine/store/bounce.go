package store

import (
	"math/bits"
	"sync"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
)

// maxBounce bounds the aligned buffer a device read goes through when it cannot land in the
// reader's memory (unaligned memory, a partial checksum block, a block with a deferred write
// pending): readRange reads a longer extent through it in pieces of this size (or of one checksum
// block when blocks are larger), so the pool never holds buffers larger than that.
const maxBounce = 256 << 10

// bouncePool hands out aligned buffers for those device reads, so that a read of any size or
// memory alignment allocates nothing once the pool is warm. Buffers come in power-of-two classes
// from one checksum block up to the piece size; sync.Pool lets the garbage collector drop idle
// ones. Safe for concurrent use.
type bouncePool struct {
	block int // the smallest class: one checksum block
	piece int // the largest class: max(maxBounce, block)
	pools []sync.Pool
}

// newBouncePool returns a pool for a store whose checksum blocks are block bytes (a power of two).
func newBouncePool(block int) *bouncePool {
	p := &bouncePool{block: block, piece: max(maxBounce, block)}
	p.pools = make([]sync.Pool, bits.Len(uint(p.piece/block)))
	for i := range p.pools {
		size := block << i
		p.pools[i].New = func() any {
			b := blockdev.AlignedBuffer(size)
			return &b
		}
	}
	return p
}

// get returns an aligned buffer of n bytes (a positive multiple of the checksum block, at most
// the piece size) and the handle to give back to put.
func (p *bouncePool) get(n int) ([]byte, *[]byte) {
	c := p.class(n)
	h, ok := p.pools[c].Get().(*[]byte)
	if !ok { // cannot happen: New and put store only *[]byte
		b := blockdev.AlignedBuffer(p.block << c)
		h = &b
	}
	return (*h)[:n], h
}

// put returns a buffer that get handed out.
func (p *bouncePool) put(h *[]byte) {
	p.pools[p.class(cap(*h))].Put(h)
}

// class is the index of the smallest class that holds n bytes.
func (p *bouncePool) class(n int) int {
	return bits.Len(uint((n+p.block-1)/p.block - 1))
}
