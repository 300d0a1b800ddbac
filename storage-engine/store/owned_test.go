package store

import (
	"bytes"
	"fmt"
	"testing"
	"unsafe"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
)

// TestWriteOwned: data handed over with WriteOwned is written from where it lies when it is
// aligned (copied when it is not), reads back before and after a reopen, passes the deep fsck,
// and is never written to by the store: not by the prepared path of large writes, the deferred
// in-place path of small ones (which keeps blocks of it in the overlay) or the read-modify-write
// of later writes to the same blocks.
func TestWriteOwned(t *testing.T) {
	for _, mo := range []MkfsOptions{
		{}, // 4 KiB checksum blocks: large writes keep blockSums
		{MinAllocSize: 64 << 10, ChecksumBlockSize: 16 << 10}, // prepare computes its own checksums
	} {
		t.Run(fmt.Sprintf("csum=%d", mo.ChecksumBlockSize), func(t *testing.T) {
			env := newEnvMkfs(t, nil, Options{}, mo)
			s := env.open(t)
			commit(t, s, NewTransaction().CreateCollection("c"))
			// The object exists and is mapped, so the small writes below are deferred in place.
			commit(t, s, NewTransaction().Write("c", "o", 0, pattern(4<<20, 9)))
			model := pattern(4<<20, 9)
			before := s.Metrics()
			type handed struct{ buf, was []byte }
			var all []handed
			for i, w := range []struct {
				off, n  uint64
				aligned bool
			}{
				{0, 1 << 20, true},              // prepared, checksums from blockSums
				{1<<20 + 4096, 300 << 10, true}, // prepared from a checksum block inside a unit
				{2 << 20, 4096, true},           // deferred in place: the overlay keeps the block
				{2<<20 + 1000, 5000, true},      // a read-modify-write of the block above and the next
				{3 << 20, 256 << 10, false},     // not aligned in memory: copied
				{3<<20 + 8192, 4096, false},
			} {
				buf := blockdev.AlignedBuffer(int(w.n) + blockdev.Alignment)
				if !w.aligned {
					buf = buf[512:]
				}
				buf = buf[:w.n:w.n]
				copy(buf, pattern(int(w.n), byte(i+1)))
				txn := NewTransaction().WriteOwned("c", "o", w.off, buf)
				if aliased := unsafe.SliceData(txn.ops[0].data) == unsafe.SliceData(buf); aliased != w.aligned {
					t.Fatalf("write %d (aligned %v): the transaction refers to the caller's memory: %v, want %v", i, w.aligned, aliased, w.aligned)
				}
				commit(t, s, txn)
				copy(model[w.off:], buf)
				all = append(all, handed{buf: buf, was: bytes.Clone(buf)})
				mustRead(t, s, "c", "o", 0, uint64(len(model)), model)
			}
			// The paths the cases are meant to reach.
			m := s.Metrics()
			if m.PreparedBytes == before.PreparedBytes {
				t.Fatalf("no owned write was prepared (PreparedBytes %d)", m.PreparedBytes)
			}
			if m.DeferredQueue+int(m.DeferredApplied) == before.DeferredQueue+int(before.DeferredApplied) {
				t.Fatalf("no owned write was deferred (queue %d, applied %d)", m.DeferredQueue, m.DeferredApplied)
			}
			for i, h := range all {
				if !bytes.Equal(h.buf, h.was) {
					t.Fatalf("the store wrote to the buffer of write %d", i)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			s = env.open(t)
			mustRead(t, s, "c", "o", 0, uint64(len(model)), model)
		})
	}
}
