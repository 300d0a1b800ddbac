package metafs

import (
	"context"
	"fmt"
	"testing"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cockroachdb/pebble/v2"
)

// testRegion is the region the tests format: it starts past a label-sized gap, as in a store.
var testRegion = Extent{Offset: 1 << 20, Length: 96 << 20}

func pebbleOpts(fs *FS) *pebble.Options {
	return &pebble.Options{FS: fs, MemTableSize: 1 << 20, L0CompactionThreshold: 2, Logger: discardLogger{}}
}

type discardLogger struct{}

func (discardLogger) Infof(string, ...any)  {}
func (discardLogger) Errorf(string, ...any) {}
func (discardLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}

func key(i int) []byte { return fmt.Appendf(nil, "key-%08d", i) }
func value(i, gen int) []byte {
	v := make([]byte, 100+i%300)
	for j := range v {
		v[j] = byte(i*7 + j + gen)
	}
	return v
}

// TestPebbleOnMetafs runs pebble on a metafs through flushes and compactions, closes it, mounts
// again and reads every key back.
func TestPebbleOnMetafs(t *testing.T) {
	dev := blockdev.NewMem(128<<20, 4096)
	if err := Format(dev, testRegion, Options{}); err != nil {
		t.Fatal(err)
	}
	fs, err := Mount(dev, testRegion, Options{})
	if err != nil {
		t.Fatal(err)
	}
	db, err := pebble.Open("/db", pebbleOpts(fs))
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	for gen := range 2 {
		for i := 0; i < n; i += 100 {
			b := db.NewBatch()
			for j := i; j < i+100; j++ {
				if err := b.Set(key(j), value(j, gen), nil); err != nil {
					t.Fatal(err)
				}
			}
			if err := b.Commit(pebble.Sync); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := db.Compact(context.Background(), key(0), key(n), true); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fs.Close(); err != nil {
		t.Fatal(err)
	}
	fs, err = Mount(dev.Reopen(), testRegion, Options{})
	if err != nil {
		t.Fatal(err)
	}
	db, err = pebble.Open("/db", pebbleOpts(fs))
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		v, closer, err := db.Get(key(i))
		if err != nil {
			t.Fatalf("get %d: %v", i, err)
		}
		if string(v) != string(value(i, 1)) {
			t.Fatalf("key %d: wrong value", i)
		}
		_ = closer.Close()
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	u := fs.Usage()
	t.Logf("usage after reopen: %+v", u)
	if err := fs.Close(); err != nil {
		t.Fatal(err)
	}
}
