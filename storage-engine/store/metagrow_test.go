package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
)

// TestMetadataGrowsIntoDataSpace fills a store's metadata (omap values) to three times its
// region: the metadata database takes space from the data space instead of refusing commits,
// the objects' data never lands there (deep fsck at every open's cleanup), and everything reads
// back after a remount, which finds the grown space in the metadata file system's journal.
func TestMetadataGrowsIntoDataSpace(t *testing.T) {
	const region = 8 << 20
	dev := blockdev.NewMem(128<<20, 4096)
	e := newEnvMkfs(t, dev, Options{}, MkfsOptions{MetadataSize: region})
	s := e.open(t)
	commit(t, s, NewTransaction().CreateCollection("c").Touch("c", "meta"))
	val := func(i int) []byte { return randomBytes(32<<10, i) }
	const keys = 3 * region / (32 << 10)
	for i := 0; i < keys; i += 8 {
		kvs := map[string][]byte{}
		for j := i; j < min(i+8, keys); j++ {
			kvs[fmt.Sprintf("k%05d", j)] = val(j)
		}
		txn := NewTransaction().OmapSet("c", "meta", kvs)
		// Data written meanwhile must stay out of the metadata's space.
		txn.Write("c", fmt.Sprint("d", i%16), 0, pattern(64<<10, byte(i)))
		commit(t, s, txn)
	}
	grown := s.Statfs().MetadataGrown
	if grown < region {
		t.Fatalf("%d MiB of omap values in an %d MiB region: the metadata space grew by %d bytes only", keys*32>>10, region>>20, grown)
	}
	if loc, want := s.MetadataLocation(), fmt.Sprintf(" and %d bytes of the data space in ", grown); !strings.Contains(loc, want) {
		t.Fatalf("MetadataLocation %q does not say the metadata grew (%q)", loc, want)
	}
	mustCheck(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = e.open(t)
	// Close's memtable flush, and compactions after the mount, may grow it further.
	if got := s.Statfs().MetadataGrown; got < grown {
		t.Fatalf("after remount the metadata has %d bytes of grown space, before %d", got, grown)
	}
	for i := 0; i < keys; i += 97 {
		k := fmt.Sprintf("k%05d", i)
		got, err := s.OmapGet(ctx, "c", "meta", k)
		if err != nil {
			t.Fatal(err)
		}
		if string(got[k]) != string(val(i)) {
			t.Fatalf("omap key %s: wrong value after remount", k)
		}
	}
	u := s.meta.fs.Usage()
	t.Logf("region %d MiB, grown by %d MiB, data space %d MiB; after remount the metadata uses %d of %d MiB", region>>20, grown>>20, s.Statfs().Total>>20, (u.Size-u.Free)>>20, u.Size>>20)
}

// TestMetadataGrowthNeedsDataSpace: a store whose data space is full cannot grow its metadata,
// and Commit says so with ErrNoSpace instead of filling the region. Later commits do not try again
// (each would hold commitMu) until the data space has gained room; then the metadata grows and
// the refused omap commits go through.
func TestMetadataGrowthNeedsDataSpace(t *testing.T) {
	const region = 8 << 20
	dev := blockdev.NewMem(24<<20, 4096)
	e := newEnvMkfs(t, dev, Options{}, MkfsOptions{MetadataSize: region})
	s := e.open(t)
	commit(t, s, NewTransaction().CreateCollection("c").Touch("c", "meta"))
	// Fill the data space.
	var objects int
	for i := 0; ; i++ {
		err := s.Commit(ctx, NewTransaction().Write("c", fmt.Sprint("d", i), 0, pattern(1<<20, byte(i))))
		if errors.Is(err, ErrNoSpace) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		objects++
	}
	var err error
	omap := func(i int) *Transaction {
		return NewTransaction().OmapSet("c", "meta", map[string][]byte{fmt.Sprint("k", i): randomBytes(32<<10, i)})
	}
	next := 0
	for ; err == nil && next < 4*region/(32<<10); next++ {
		err = s.Commit(ctx, omap(next))
	}
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("omap values four times the region on a full store: got %v, want ErrNoSpace", err)
	}
	if !strings.Contains(err.Error(), "cannot grow") {
		t.Fatalf("the refusal does not say the metadata cannot grow: %v", err)
	}
	t.Logf("refused: %v", err)
	attempts := s.growAttempts.Load()
	// Commits go on (pebble's flushes and compactions free space) or are refused; none tries to
	// grow the metadata again while the data space has no more room.
	for range 20 {
		if err := s.Commit(ctx, omap(next)); err != nil && !errors.Is(err, ErrNoSpace) {
			t.Fatalf("omap commit on the full store: %v, want nil or ErrNoSpace", err)
		}
		next++
	}
	if got := s.growAttempts.Load(); got != attempts {
		t.Fatalf("20 commits tried to grow the metadata %d more times; the data space gained no room", got-attempts)
	}
	txn := NewTransaction()
	for i := range min(objects, 12) {
		txn.Remove("c", fmt.Sprint("d", i))
	}
	commit(t, s, txn)
	// pebble's background work may have freed room meanwhile, so the next commits may fit without
	// growing; before four regions' worth of omap more, every commit succeeds and the metadata grows.
	for i := 0; s.Statfs().MetadataGrown == 0 && i < 4*region/(32<<10); i++ {
		commit(t, s, omap(next))
		next++
	}
	if s.growAttempts.Load() == attempts || s.Statfs().MetadataGrown == 0 {
		t.Fatalf("after 12 MiB of data were removed the metadata did not grow (%d attempts, %d bytes grown)", s.growAttempts.Load()-attempts, s.Statfs().MetadataGrown)
	}
}

// randomBytes returns n incompressible bytes chosen by seed: pebble compresses its tables, and
// patterned omap values would fit in the metadata region.
func randomBytes(n, seed int) []byte {
	r := rand.New(rand.NewPCG(uint64(seed), 5))
	b := make([]byte, n+8)
	for j := 0; j < n; j += 8 {
		binary.LittleEndian.PutUint64(b[j:], r.Uint64())
	}
	return b[:n]
}
