package store

import (
	"fmt"
	"testing"
)

// TestPreparedWriteChecksums: large writes, whose prepared units take the checksums Write
// computed while copying when the store's checksum block is sumBlock, read back whole and pass
// the deep fsck (every checksum against the data on the device) with either checksum block size,
// at offsets that start on a checksum block, inside one, and inside an allocation unit.
func TestPreparedWriteChecksums(t *testing.T) {
	for _, mo := range []MkfsOptions{
		{},                       // 4 KiB checksum blocks and units: Write's checksums are used
		{MinAllocSize: 64 << 10}, // 4 KiB checksum blocks, 64 KiB units
		{MinAllocSize: 64 << 10, ChecksumBlockSize: 16 << 10}, // other checksum blocks: computed by prepare
	} {
		t.Run(fmt.Sprintf("unit=%d,csum=%d", mo.MinAllocSize, mo.ChecksumBlockSize), func(t *testing.T) {
			s := newEnvMkfs(t, nil, Options{}, mo).open(t)
			commit(t, s, NewTransaction().CreateCollection("c"))
			for i, w := range []struct{ off, n uint64 }{
				{0, 1 << 20},
				{4096, 1<<20 + 4096},
				{16 << 10, 256 << 10},
				{64<<10 + 512, 200 << 10}, // not on a checksum block: computed by prepare
				{3 << 20, 64 << 10},
				{5<<20 + 8192, 300<<10 + 1000},
			} {
				name := fmt.Sprintf("o%d", i)
				data := pattern(int(w.n), byte(i+1))
				commit(t, s, NewTransaction().Write("c", name, w.off, data))
				mustRead(t, s, "c", name, w.off, w.n, data)
			}
			if got := s.Metrics().PreparedBytes; got == 0 {
				t.Fatalf("no write was prepared (PreparedBytes 0): the test does not reach prepareRange")
			}
		})
	}
}
