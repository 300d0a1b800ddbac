package replica

import (
	"testing"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
)

// TestBufPool: get returns a buffer of the size asked whatever was given back before (smaller,
// larger, or over the size it keeps), and large buffers start 4 KiB-aligned, as direct reads
// want.
func TestBufPool(t *testing.T) {
	var b bufPool
	for _, n := range []int{4 << 20, 4096, 8 << 20, maxPooled + 4096, 1 << 20, 0} {
		buf := b.get(n)
		if len(buf) != n {
			t.Fatalf("get(%d) returned %d bytes", n, len(buf))
		}
		if n >= 1<<20 && !blockdev.IsAligned(buf, 4096) {
			t.Fatalf("get(%d) returned a buffer that does not start at a 4 KiB boundary", n)
		}
		for i := range buf {
			buf[i] = 1
		}
		b.put(buf)
	}
}
