package store

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"syscall"
	"testing"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev/faultdev"
)

// metaRegionRule fails every write of ops into the metadata region the device's label names.
func metaRegionRule(t *testing.T, dev blockdev.Device, err error) faultdev.Rule {
	t.Helper()
	label, lerr := blockdev.ReadLabel(dev)
	if lerr != nil || !label.MetaOnDevice() {
		t.Fatalf("label %+v: %v", label, lerr)
	}
	return faultdev.Rule{Ops: faultdev.OpWrite, Offset: label.MetaOffset, Length: label.MetaLength, Err: err}
}

// mountAndCheck mounts dev, checks that every object of want holds its data, and runs a deep fsck.
func mountAndCheck(t *testing.T, what string, dev blockdev.Device, opts Options, want map[string][]byte) {
	t.Helper()
	s, err := Open(ctx, dev, "", opts)
	if err != nil {
		t.Fatalf("%s: mount: %v", what, err)
	}
	for name, data := range want {
		mustRead(t, s, "c", name, 0, 0, data)
	}
	mustCheck(t, s)
	if err := s.Close(); err != nil {
		t.Fatalf("%s: close: %v", what, err)
	}
}

// fillWithOmap commits objects carrying 8 KiB of omap each into a new collection "c" until a
// commit fails (at most 20,000 objects); it returns the acknowledged objects' data and the error.
func fillWithOmap(t *testing.T, s *Store) (map[string][]byte, error) {
	t.Helper()
	commit(t, s, NewTransaction().CreateCollection("c"))
	want := map[string][]byte{}
	for n := 0; n < 5000; n++ {
		txn := NewTransaction()
		batch := map[string][]byte{}
		for j := range 4 {
			name := fmt.Sprintf("o%d-%d", n, j)
			batch[name] = pattern(512, byte(n+j))
			om := map[string][]byte{}
			for k := range 8 {
				om[fmt.Sprintf("k%d", k)] = pattern(1024, byte(n*k+j))
			}
			txn.Write("c", name, 0, batch[name]).OmapSet("c", name, om)
		}
		if err := s.Commit(ctx, txn); err != nil {
			return want, err
		}
		maps.Copy(want, batch)
	}
	return want, nil
}

// removeSome removes n objects of want from collection "c" (and from want); each removal must
// commit.
func removeSome(t *testing.T, s *Store, want map[string][]byte, n int) {
	t.Helper()
	for name := range want {
		if n == 0 {
			return
		}
		if err := s.Commit(ctx, NewTransaction().Remove("c", name)); err != nil {
			t.Fatalf("remove %s from the full store: %v", name, err)
		}
		delete(want, name)
		n--
	}
}

// failMetadataWrites commits five objects, then fails the writes rule matches on fd during a
// commit: the commit must return ErrFailed wrapping EIO, the store must report Failed and refuse
// writes after the rule is cleared while reads still work; it closes the store and returns the
// acknowledged objects' data.
func failMetadataWrites(t *testing.T, s *Store, fd *faultdev.Device, rule faultdev.Rule) map[string][]byte {
	t.Helper()
	want := map[string][]byte{}
	commit(t, s, NewTransaction().CreateCollection("c"))
	for i := range 5 {
		name := fmt.Sprintf("o%d", i)
		want[name] = pattern(20000+i*1000, byte(i))
		commit(t, s, NewTransaction().Write("c", name, 0, want[name]).SetAttr("c", name, "a", []byte(name)))
	}
	fd.Inject(rule)
	err := s.Commit(ctx, NewTransaction().Write("c", "lost", 0, pattern(9000, 9)).Write("c", "o0", 0, pattern(4096, 8)))
	if !errors.Is(err, syscall.EIO) || !errors.Is(err, ErrFailed) {
		t.Fatalf("Commit with the metadata writes failing = %v, want ErrFailed wrapping EIO", err)
	}
	t.Logf("Commit: %v", err)
	if h := s.Health(); h.State != HealthFailed || h.Reason != ReasonMetadataDeviceFailed {
		t.Fatalf("health after a failed metadata commit: %+v, want Failed (%s)", h, ReasonMetadataDeviceFailed)
	}
	fd.ClearRules()
	if err := s.Commit(ctx, NewTransaction().Touch("c", "after")); !errors.Is(err, ErrFailed) {
		t.Fatalf("Commit after a failed metadata commit = %v, want ErrFailed", err)
	}
	mustRead(t, s, "c", "o1", 0, 0, want["o1"]) // reads still work
	t.Logf("Close of the failed store: %v", s.Close())
	return want
}

// TestMetadataRegionWriteErrorFailsTheStore fails the writes into the metadata region during a
// commit (the WAL's write through metafs): the commit returns the device error wrapped in
// ErrFailed, the store reports Failed and refuses writes, and once the device works again the
// store mounts, from the device as it is and from its durable image, with every acknowledged
// object and a clean deep fsck.
func TestMetadataRegionWriteErrorFailsTheStore(t *testing.T) {
	e, fd := newFaultEnv(t, testDevSize, Options{PreferDeferredSize: -1})
	s, err := Open(ctx, e.dev, "", e.opts)
	if err != nil {
		t.Fatal(err)
	}
	want := failMetadataWrites(t, s, fd, metaRegionRule(t, fd, syscall.EIO))

	mountAndCheck(t, "durable image", fd.DurableImage(), e.opts, want)
	mountAndCheck(t, "current image", fd.CurrentImage(), e.opts, want)
	mountAndCheck(t, "same device", fd, e.opts, want)
}

// TestMetadataRegionFullIsACleanError fills a small metadata region (8 MiB on a 64 MiB device)
// with objects carrying large omap values until a commit fails: the metadata grows into the data
// space (metagrow.go) until neither can take more, then the error wraps ErrNoSpace (and ENOSPC
// when it is the metadata that is full), or ErrFailed wrapping ENOSPC; nothing panics, and the
// store mounts again with every acknowledged object and a clean deep fsck. Transactions that only
// remove still commit in the full store.
func TestMetadataRegionFullIsACleanError(t *testing.T) {
	mem := blockdev.NewMem(testDevSize, 4096)
	e := newEnvMkfs(t, mem, Options{}, MkfsOptions{MetadataSize: 8 << 20})
	s, err := Open(ctx, e.dev, "", e.opts)
	if err != nil {
		t.Fatal(err)
	}
	want, err := fillWithOmap(t, s)
	t.Logf("after %d objects: %v (health %+v)", len(want), err, s.Health())
	if err == nil {
		t.Fatalf("%d objects with 8 KiB of omap each fit in an 8 MiB metadata region", len(want))
	}
	if !errors.Is(err, ErrNoSpace) && (!errors.Is(err, ErrFailed) || !errors.Is(err, syscall.ENOSPC)) {
		t.Fatalf("filling the store ended with %v, want ErrNoSpace, or ErrFailed wrapping ENOSPC", err)
	}
	if s.Statfs().MetadataGrown == 0 {
		t.Fatal("the store filled up without its metadata growing into the data space")
	}
	if err := s.Commit(ctx, NewTransaction().Write("c", "more", 0, pattern(1<<20, 1)).OmapSet("c", "more", map[string][]byte{"k": pattern(64<<10, 1)})); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("a commit adding 1 MiB of data and 64 KiB of omap to the full store: %v, want ErrNoSpace", err)
	}
	removeSome(t, s, want, 40)
	mustCheck(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	mountAndCheck(t, "after the region filled", mem, e.opts, want)
}

// TestSustainedOverwritesKeepMetadataRegionFree overwrites random 4 KiB blocks of existing
// objects on a 1 GiB store (a 64 MiB metadata region, 8 MiB memtables): every overwrite takes the
// deferred path, so its data goes through pebble's WAL and the flusher deletes its record later.
// Nothing grows, so every commit must succeed and the region's free space must stay above the
// reserve Commit keeps. pebble used to keep up to three obsolete WAL files of 8 MiB for reuse
// besides the live one, and the region fell below the reserve after about 8,500 overwrites (four
// WALs of a memtable each). The store then mounts with every overwrite and a clean deep fsck.
func TestSustainedOverwritesKeepMetadataRegionFree(t *testing.T) {
	const (
		objects  = 16
		objSize  = 4 << 20
		block    = 4096
		workers  = 8
		perWrite = 5000 // overwrites per worker: 40,000 in all, about 20 memtables of WAL
	)
	mem := blockdev.NewMem(1<<30, 4096)
	e := newEnvMkfs(t, mem, Options{}, MkfsOptions{})
	s, err := Open(ctx, e.dev, "", e.opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.meta.region.Length; got != 64<<20 {
		t.Fatalf("metadata region of a 1 GiB device is %d bytes, want 64 MiB", got)
	}
	commit(t, s, NewTransaction().CreateCollection("c"))
	want := map[string][]byte{}
	names := make([]string, objects)
	for i := range objects {
		names[i] = fmt.Sprintf("o%d", i)
		want[names[i]] = pattern(objSize, byte(i))
		commit(t, s, NewTransaction().Write("c", names[i], 0, want[names[i]]))
	}
	deferredBefore := s.m.deferredApplied.Load()
	// Worker w overwrites only objects w, w+workers, ...: the model of each object has one writer.
	errs := make([]error, workers)
	minSlack := make([]int64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			minSlack[w] = math.MaxInt64
			for i := range perWrite {
				name := names[w+workers*r.IntN(objects/workers)]
				off := r.IntN(objSize/block) * block
				data := pattern(block, byte(w*31+i))
				if err := s.Commit(ctx, NewTransaction().Write("c", name, uint64(off), data)); err != nil {
					errs[w] = fmt.Errorf("overwrite %d of worker %d (%s at %d): %w", i, w, name, off, err)
					return
				}
				copy(want[name][off:], data)
				u := s.meta.fs.Usage()
				minSlack[w] = min(minSlack[w], u.Free-s.metaReserve(u, metaReserveMemTables))
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	slack := slices.Min(minSlack)
	t.Logf("after %d overwrites (%d deferred blocks applied): the region's free space stayed at least %d bytes above the reserve",
		workers*perWrite, s.m.deferredApplied.Load()-deferredBefore, slack)
	if slack < 0 {
		t.Fatalf("the metadata region's free space fell %d bytes below the reserve", -slack)
	}
	if g := s.Statfs().MetadataGrown; g != 0 {
		t.Fatalf("overwrites in place grew the metadata into %d bytes of the data space: the region must hold them", g)
	}
	for name, data := range want {
		mustRead(t, s, "c", name, 0, 0, data)
	}
	mustCheck(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	mountAndCheck(t, "after sustained overwrites", mem, e.opts, want)
}
