package metafs

import (
	"context"
	"fmt"
	"slices"
	"strings"
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

// TestPebbleAddSpace runs pebble on a region too small for its data, adding extents after the
// region whenever the free space runs low (as the store does), through flushes and compactions;
// then mounts again and reads every key back.
func TestPebbleAddSpace(t *testing.T) {
	region := Extent{Offset: 1 << 20, Length: 12 << 20}
	const chunk = 8 << 20
	dev := blockdev.NewMem(region.End()+8*chunk, 4096)
	o := Options{JournalSize: 1 << 20}
	if err := Format(dev, region, o); err != nil {
		t.Fatal(err)
	}
	fs, err := Mount(dev, region, o)
	if err != nil {
		t.Fatal(err)
	}
	db, err := pebble.Open("/db", pebbleOpts(fs))
	if err != nil {
		t.Fatal(err)
	}
	next := region.End()
	grow := func() {
		if fs.Usage().Free >= 6<<20 {
			return
		}
		if next+chunk > dev.Size() {
			t.Fatalf("the test's %d bytes of added space ran out", next-region.End())
		}
		if err := fs.AddSpace(Extent{Offset: next, Length: chunk}); err != nil {
			t.Fatal(err)
		}
		next += chunk
	}
	// Values that do not compress: the tables outgrow the region.
	val := func(i int) []byte { return pattern(600, uint64(i)) }
	const n = 30000
	for i := 0; i < n; i += 100 {
		grow()
		b := db.NewBatch()
		for j := i; j < i+100; j++ {
			if err := b.Set(key(j), val(j), nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	grow()
	if err := db.Compact(context.Background(), key(0), key(n), true); err != nil {
		t.Fatal(err)
	}
	var tables int64
	names, err := fs.List("/db")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if st, err := fs.Stat("/db/" + name); err == nil && strings.HasSuffix(name, ".sst") {
			tables += st.Size()
		}
	}
	if tables <= region.Length || len(fs.Space()) == 0 {
		t.Fatalf("tables hold %d bytes for a %d-byte region, %d extents added: the test does not outgrow the region", tables, region.Length, len(fs.Space()))
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	space := fs.Space()
	if err := fs.Close(); err != nil {
		t.Fatal(err)
	}
	if r, err := Check(dev, region, Options{}); err != nil {
		t.Fatalf("Check: %v\n%s", err, r)
	}
	fs, err = Mount(dev.Reopen(), region, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := fs.Space(); !slices.Equal(got, space) {
		t.Fatalf("after a remount Space() = %v, want %v", got, space)
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
		if string(v) != string(val(i)) {
			t.Fatalf("key %d: wrong value", i)
		}
		_ = closer.Close()
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("usage after reopen: %+v, %d extents added", fs.Usage(), len(space))
	if r, err := fs.Check(); err != nil {
		t.Fatalf("Check: %v\n%s", err, r)
	}
	if err := fs.Close(); err != nil {
		t.Fatal(err)
	}
}
