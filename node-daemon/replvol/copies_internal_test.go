package replvol

import (
	"bytes"
	"context"
	"testing"

	"github.com/cobaltstore/cobalt/node-daemon/replica"
)

// readerSrc is a copy source that reads past its node's cache (replica.NoCacheReader).
type readerSrc struct {
	replica.Syncer
	data  []byte
	calls int
}

func (r *readerSrc) ReadNoCache(_ context.Context, _ uint64, off, length int64) ([]byte, error) {
	r.calls++
	return bytes.Clone(r.data[off : off+length]), nil
}

// intoSrc also reads into the caller's buffer (replica.NoCacheReaderInto).
type intoSrc struct{ *readerSrc }

func (r intoSrc) ReadNoCacheInto(_ context.Context, _ uint64, off int64, p []byte) error {
	r.calls += 100
	copy(p, r.data[off:])
	return nil
}

// TestWatchedReadNoCacheInto: a watched copy reads into the caller's buffer through its copy
// when the copy can, else through ReadNoCache, with the same bytes either way.
func TestWatchedReadNoCacheInto(t *testing.T) {
	data := make([]byte, 1<<16)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, c := range []struct {
		name      string
		base      *readerSrc
		wantCalls int
	}{
		{"reads into", &readerSrc{data: data}, 100},
		{"reads, then copies", &readerSrc{data: data}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			var src replica.Syncer = c.base
			if c.wantCalls == 100 {
				src = intoSrc{c.base}
			}
			w := &watched{Syncer: src}
			p := make([]byte, 4096)
			if err := w.ReadNoCacheInto(context.Background(), 1, 8192, p); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(p, data[8192:8192+4096]) || c.base.calls != c.wantCalls {
				t.Fatalf("read %d bytes (equal %v) with %d calls, want the source's bytes with %d", len(p), bytes.Equal(p, data[8192:8192+4096]), c.base.calls, c.wantCalls)
			}
		})
	}
}
