package replica

import "sync"

// maxPooled is the largest buffer a bufPool keeps: a read or write request's limit.
const maxPooled = 16 << 20

// bufPool recycles the buffers that copies and comparisons read into (a chunk, a few MiB each),
// so that a rebuild does not allocate, clear and collect one per chunk. Buffers are
// 4 KiB-aligned when their size is a multiple of 4 KiB (Go's large allocations are), as direct
// reads want. The zero value is ready; it is safe for concurrent use.
type bufPool struct {
	p sync.Pool // of *[]byte
}

// get returns a buffer of n bytes, with whatever it held before. Give it back with put once
// nothing refers to it.
func (b *bufPool) get(n int) []byte {
	if n <= maxPooled {
		if p, ok := b.p.Get().(*[]byte); ok {
			if cap(*p) >= n {
				return (*p)[:n]
			}
		}
	}
	return make([]byte, n)
}

// put gives back a buffer get returned.
func (b *bufPool) put(buf []byte) {
	if cap(buf) == 0 || cap(buf) > maxPooled {
		return
	}
	buf = buf[:cap(buf)]
	b.p.Put(&buf)
}
