package objstore_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
	"github.com/cobaltstore/cobalt/node-daemon/objstore/memstore"
)

// readCounter embeds the Store interface, as the test wrappers that change Read do (a rotting
// store, a failing one): it has no ReadInto, so the adapters must go through its Read.
type readCounter struct {
	objstore.Store
	reads int
}

func (r *readCounter) Read(ctx context.Context, c, o string, off, length int64) ([]byte, error) {
	r.reads++
	return r.Store.Read(ctx, c, o, off, length)
}

// noCacheCounter is a readCounter with a ReadNoCache of its own (objstore.NoCacheReader).
type noCacheCounter struct {
	readCounter
	noCache int
}

func (r *noCacheCounter) ReadNoCache(ctx context.Context, c, o string, off, length int64) ([]byte, error) {
	r.noCache++
	return r.Store.Read(ctx, c, o, off, length)
}

// TestReaderIntoFallback: for a Store without ReadInto, ReaderInto and NoCacheReaderInto read
// through its Read (or its ReadNoCache) and copy, with ReadInto's contract: short at the end, the
// rest of the buffer untouched, errors passed on.
func TestReaderIntoFallback(t *testing.T) {
	ctx := context.Background()
	mem := memstore.New("m", 1<<20)
	data := bytes.Repeat([]byte("0123456789"), 100)
	if err := mem.Commit(ctx, []objstore.Op{objstore.CreateCollection("c"), objstore.Write("c", "o", 0, data)}); err != nil {
		t.Fatal(err)
	}
	plain := &readCounter{Store: mem}
	withNoCache := &noCacheCounter{readCounter: readCounter{Store: mem}}
	for _, tc := range []struct {
		name             string
		read             objstore.ReadIntoFunc
		reads, noCache   func() int
		wantRead, wantNC int // calls per read
	}{
		{"ReaderInto", objstore.ReaderInto(plain), func() int { return plain.reads }, func() int { return 0 }, 1, 0},
		{"NoCacheReaderInto without ReadNoCache", objstore.NoCacheReaderInto(plain), func() int { return plain.reads }, func() int { return 0 }, 1, 0},
		{"NoCacheReaderInto with ReadNoCache", objstore.NoCacheReaderInto(withNoCache), func() int { return withNoCache.reads }, func() int { return withNoCache.noCache }, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r0, n0 := tc.reads(), tc.noCache()
			p := bytes.Repeat([]byte{'.'}, 20)
			n, err := tc.read(ctx, "c", "o", 990, p)
			if err != nil || n != 10 || string(p) != "0123456789.........." {
				t.Fatalf("read crossing the end = %d, %v, %q", n, err, p)
			}
			if r, nc := tc.reads()-r0, tc.noCache()-n0; r != tc.wantRead || nc != tc.wantNC {
				t.Fatalf("Read called %d times, ReadNoCache %d; want %d and %d", r, nc, tc.wantRead, tc.wantNC)
			}
			if _, err := tc.read(ctx, "c", "missing", 0, p); !errors.Is(err, objstore.ErrNotFound) {
				t.Fatalf("read of a missing object: %v", err)
			}
		})
	}
	// memstore itself has ReadInto: the adapter uses it, not Read.
	if _, ok := any(mem).(objstore.IntoReader); !ok {
		t.Fatal("memstore has no ReadInto")
	}
	if _, ok := any(plain).(objstore.IntoReader); ok {
		t.Fatal("a wrapper embedding the Store interface has a ReadInto that would bypass its Read")
	}
}
