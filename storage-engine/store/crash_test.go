package store

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev/faultdev"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// crashCuts is the number of power cuts a crash test makes, def unless COBALT_CRASH_CUTS
// overrides it (make crash-soak runs thousands).
func crashCuts(t *testing.T, def int) int {
	if v := os.Getenv("COBALT_CRASH_CUTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("COBALT_CRASH_CUTS=%q is not a positive number", v)
		}
		return n
	}
	return def
}

// txnOutcome is what a worker knows about one transaction it submitted.
type txnOutcome int

const (
	outcomeApplied   txnOutcome = iota // Commit returned nil before the crash image was taken
	outcomeFailed                      // Commit returned an error before the crash image: no effect
	outcomeUncertain                   // still running when the crash image was taken
)

// crashWorker is one worker's collection and what it committed since the collection's state was
// last verified. The workers of a test share mu, which guards txns and outs while they run: a
// test that takes crash images while the workers commit (crash_device_test.go) holds it to take
// an image and the workers' snapshots as one instant.
type crashWorker struct {
	coll string
	base *model // the collection's state at the start of the round
	mu   *sync.Mutex
	txns []*Transaction
	outs []txnOutcome
}

// newCrashWorkers makes n workers with a collection each, created by the transaction returned.
func newCrashWorkers(n int) ([]*crashWorker, *Transaction) {
	mu := new(sync.Mutex)
	ws := make([]*crashWorker, n)
	setup := NewTransaction()
	for i := range ws {
		ws[i] = &crashWorker{coll: fmt.Sprintf("w%d", i), base: newModel(), mu: mu}
		ws[i].base.colls[ws[i].coll] = map[string]*mobj{}
		setup.CreateCollection(ws[i].coll)
	}
	return ws, setup
}

// begin records txn, about to be committed, as uncertain.
func (w *crashWorker) begin(txn *Transaction) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.txns = append(w.txns, txn)
	w.outs = append(w.outs, outcomeUncertain)
}

// settle records the outcome of the last transaction begun.
func (w *crashWorker) settle(o txnOutcome) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.outs[len(w.outs)-1] = o
}

// snapshotLocked returns a copy of w as it is now, guarded by mu, for verifying a crash image
// taken at this instant. REQUIRES: w.mu.
func (w *crashWorker) snapshotLocked(mu *sync.Mutex) *crashWorker {
	return &crashWorker{coll: w.coll, base: w.base, mu: mu, txns: slices.Clip(w.txns), outs: slices.Clone(w.outs)}
}

// candidates returns the states the worker's collection may be in after the crash: the applied
// transactions in order, with each uncertain one either applied or not. Commits apply in order and
// a worker waits for each commit, so only the last transaction can be uncertain.
func (w *crashWorker) candidates() []*model {
	m := w.base
	for i, txn := range w.txns {
		switch w.outs[i] {
		case outcomeApplied:
			m, _ = applyModel(m, txn)
		case outcomeUncertain:
			with, _ := applyModel(m, txn)
			return []*model{m, with}
		}
	}
	return []*model{m}
}

// TestCrashRecovery cuts the power at random points of a concurrent random workload, on a
// fault-injecting device (unflushed writes kept, lost or torn) and a pebble MemFS (unsynced data
// partly kept), remounts, and checks: a deep fsck is clean (no leaked or doubly used space, every
// checksum right); every acknowledged transaction is present; every collection equals the state
// after a prefix of its transactions, so no transaction is half applied.
func TestCrashRecovery(t *testing.T) {
	runCrashRecovery(t, crashCuts(t, 200), Options{})
}

// TestCrashRecoveryBufferedWrites is TestCrashRecovery with Options.BufferedWrites, and the
// workers also read their objects back after each acknowledged commit (served from the buffer
// cache): before a cut reads match the acknowledged state, and after a cut the remounted store
// (with an empty cache) matches a prefix of the transactions, so no data of a transaction that
// was not durable is ever read.
func TestCrashRecoveryBufferedWrites(t *testing.T) {
	runCrashRecovery(t, crashCuts(t, 50), Options{BufferedWrites: true})
}

// runCrashRecovery runs the crash test with base options (the test sets FS and the deferred-write
// options); with base.BufferedWrites the workers check reads after each acknowledged commit.
func runCrashRecovery(t *testing.T, cuts int, base Options) {
	seed := uint64(1)
	if v := os.Getenv("COBALT_CRASH_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	rng := rand.New(rand.NewPCG(seed, 42))
	const workers = 3
	mem := blockdev.NewMem(32<<20, 4096)
	fs := vfs.NewCrashableMem()
	// Deferred writes pile up between flushes, so many cuts find records to replay at the next
	// mount (and some cut the power during that replay).
	opts := base
	opts.FS, opts.PreferDeferredSize, opts.DeferredBatch, opts.DeferredInterval = fs, 16<<10, 64, time.Hour
	opts.verifyShards = true
	if _, err := Mkfs(ctx, mem, "db", MkfsOptions{FS: fs}); err != nil {
		t.Fatal(err)
	}
	ws, setup := newCrashWorkers(workers)
	{
		s, err := Open(ctx, mem, "db", opts)
		if err != nil {
			t.Fatal(err)
		}
		commit(t, s, setup)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	var applied, uncertain, duringMount int
	verify := func(cut int, s *Store) {
		a, u := verifyWorkers(t, fmt.Sprintf("cut %d", cut), s, ws)
		applied, uncertain = applied+a, uncertain+u
	}
	for cut := range cuts {
		dev, err := faultdev.New(mem, faultdev.Options{})
		if err != nil {
			t.Fatal(err)
		}
		// Half the rounds cut at a chosen device operation, half when the workload has run for a
		// while, with commits in flight. Some cut at the first operations: inside the mount's
		// replay of deferred writes, when the previous cut left some.
		byOp := rng.IntN(2) == 0
		if byOp {
			k := rng.IntN(120)
			if rng.IntN(4) == 0 {
				k = rng.IntN(3)
			}
			dev.PowerCutAfter(faultdev.OpWrite|faultdev.OpFlush, k)
		}
		// This mount recovers from the previous cut (or the setup).
		s, openErr := Open(ctx, dev, "db", opts)
		wait := func() {}
		if openErr != nil {
			if !dev.PoweredOff() {
				t.Fatalf("cut %d: Open failed without a power cut: %v", cut, openErr)
			}
			duringMount++ // the previous cut's transactions are verified at the next mount
		} else {
			verify(cut, s)
			wait = runUntilCut(t, s, dev, ws, rng, byOp, base.BufferedWrites)
		}
		clone := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rand.New(rand.NewPCG(rng.Uint64(), 0))})
		wait()
		if s != nil {
			_ = s.Close() // fails: the device is off; it must not hang or panic
		}
		img, err := dev.Crash(rand.New(rand.NewPCG(rng.Uint64(), 1)))
		if err != nil {
			t.Fatal(err)
		}
		mem, fs = img, clone
		opts.FS = fs
	}
	s, err := Open(ctx, mem, "db", opts)
	if err != nil {
		t.Fatalf("final remount: %v", err)
	}
	verify(cuts, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d power cuts (%d during mount), %d acknowledged transactions verified, %d in flight at a cut", cuts, duringMount, applied, uncertain)
}

// verifyWorkers checks a store mounted from a crash image (what names it in messages): a deep
// fsck, then every worker's collection against the states its transactions since the last
// verification allow. It moves each worker's base to the state found, forgets its transactions,
// and returns how many of them were acknowledged and how many were in flight.
func verifyWorkers(t *testing.T, what string, s *Store, ws []*crashWorker) (applied, uncertain int) {
	t.Helper()
	r, err := s.Fsck(ctx, true)
	if err != nil || !r.OK() {
		t.Fatalf("%s: fsck after crash: %v %+v", what, err, r)
	}
	for _, w := range ws {
		got := collectionDigest(t, s, w.coll)
		w.mu.Lock()
		cands := w.candidates()
		matched := -1
		for i, c := range cands {
			if modelDigest(c, w.coll) == got {
				matched = i
				break
			}
		}
		if matched < 0 {
			w.mu.Unlock()
			var diffs []string
			for i, c := range cands {
				diffs = append(diffs, fmt.Sprintf("state %d: %s", i, collectionDiff(t, s, w.coll, c)))
			}
			t.Fatalf("%s: collection %s matches none of the %d allowed states (%d transactions, outcomes %v):\n%s",
				what, w.coll, len(cands), len(w.txns), w.outs, strings.Join(diffs, "\n"))
		}
		w.base = cands[matched]
		for _, o := range w.outs {
			switch o {
			case outcomeApplied:
				applied++
			case outcomeUncertain:
				uncertain++
			}
		}
		w.txns, w.outs = nil, nil
		w.mu.Unlock()
	}
	return applied, uncertain
}

// runUntilCut runs the workers until the power is cut: by the device rule (byOp) or by the test
// after a random number of commits. The caller takes the metadata crash image, then calls the
// returned function, which waits for the workers still committing (their outcome stays uncertain).
//
// With checkReads, after each acknowledged commit a worker reads every object of its collection
// and compares it with the acknowledged state (while the device is on).
func runUntilCut(t *testing.T, s *Store, dev *faultdev.Device, ws []*crashWorker, rng *rand.Rand, byOp, checkReads bool) func() {
	var imaged atomic.Bool // set just before the crash image is taken
	var commits atomic.Int64
	cutAt := int64(1 + rng.IntN(40))
	seeds := make([]uint64, len(ws))
	for i := range seeds {
		seeds[i] = rng.Uint64()
	}
	var mu sync.Mutex
	var firstErr error
	cutNow := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wr := rand.New(rand.NewPCG(seeds[i], 3))
			m := w.base
			for range 30 {
				if dev.PoweredOff() {
					return
				}
				txn := randomTxnIn(wr, 200000, []string{w.coll}, false)
				next, ok := applyModel(m, txn)
				w.begin(txn)
				err := s.Commit(ctx, txn)
				if imaged.Load() {
					return // outcome stays uncertain
				}
				switch {
				case err == nil:
					if !ok {
						mu.Lock()
						firstErr = fmt.Errorf("worker %s: commit succeeded, model expected failure", w.coll)
						mu.Unlock()
					}
					w.settle(outcomeApplied)
					m = next
					if checkReads {
						if err := checkCollectionReads(s, dev, m, w.coll); err != nil {
							mu.Lock()
							firstErr = fmt.Errorf("worker %s: %w", w.coll, err)
							mu.Unlock()
							return
						}
					}
				case errors.Is(err, ErrFailed):
					return // the KV itself failed: uncertain
				default:
					if ok && !dev.PoweredOff() {
						mu.Lock()
						firstErr = fmt.Errorf("worker %s: commit failed with the device on: %w", w.coll, err)
						mu.Unlock()
					}
					w.settle(outcomeFailed)
				}
				if commits.Add(1) == cutAt {
					once.Do(func() { close(cutNow) })
				}
			}
		}()
	}
	if !byOp {
		finished := make(chan struct{})
		go func() { wg.Wait(); close(finished) }()
		select {
		case <-cutNow:
		case <-finished:
		}
	} else {
		wg.Wait()
	}
	dev.PowerCut()
	imaged.Store(true)
	return func() {
		wg.Wait()
		if firstErr != nil {
			t.Fatal(firstErr)
		}
	}
}

// checkCollectionReads reads every object of collection c and compares it with m. Reads that
// end with the device off are not checked (they may fail).
func checkCollectionReads(s *Store, dev *faultdev.Device, m *model, c string) error {
	for name, o := range m.colls[c] {
		got, err := s.Read(ctx, c, name, 0, 0)
		if dev.PoweredOff() {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s/%s after its commit: %w", c, name, err)
		}
		if !bytes.Equal(got, o.data) {
			return fmt.Errorf("read %s/%s after its commit: %d bytes read differ from the %d acknowledged", c, name, len(got), len(o.data))
		}
	}
	return nil
}

// collectionDigest hashes everything a collection holds, as read through the store.
func collectionDigest(t *testing.T, s *Store, c string) uint64 {
	h := fnv.New64a()
	names, _, err := s.ListObjects(ctx, c, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		data, err := s.Read(ctx, c, n, 0, 0)
		if err != nil {
			t.Fatalf("read %s/%s after crash: %v", c, n, err)
		}
		attrs, err := s.GetAttrs(ctx, c, n)
		if err != nil {
			t.Fatal(err)
		}
		om := map[string][]byte{}
		if err := s.OmapIterate(ctx, c, n, "", func(k string, v []byte) bool { om[k] = bytes.Clone(v); return true }); err != nil {
			t.Fatal(err)
		}
		hdr, err := s.OmapGetHeader(ctx, c, n)
		if err != nil {
			t.Fatal(err)
		}
		digestObject(h, n, &mobj{data: data, xattrs: attrs, omap: om, header: hdr})
	}
	return h.Sum64()
}

func modelDigest(m *model, c string) uint64 {
	h := fnv.New64a()
	objs := m.colls[c]
	for _, n := range slices.Sorted(maps.Keys(objs)) {
		digestObject(h, n, objs[n])
	}
	return h.Sum64()
}

func digestObject(h interface{ Write([]byte) (int, error) }, name string, o *mobj) {
	fmt.Fprintf(h, "%q %d %x|", name, len(o.data), o.data)
	for _, k := range slices.Sorted(maps.Keys(o.xattrs)) {
		fmt.Fprintf(h, "x%q=%x|", k, o.xattrs[k])
	}
	for _, k := range slices.Sorted(maps.Keys(o.omap)) {
		fmt.Fprintf(h, "m%q=%x|", k, o.omap[k])
	}
	fmt.Fprintf(h, "h%v%x", o.header == nil, o.header)
}

// collectionDiff describes the first difference between collection c of the store and of m.
func collectionDiff(t *testing.T, s *Store, c string, m *model) string {
	names, _, err := s.ListObjects(ctx, c, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	objs := m.colls[c]
	if want := slices.Sorted(maps.Keys(objs)); !slices.Equal(names, want) {
		return fmt.Sprintf("objects %q, model %q", names, want)
	}
	for _, n := range names {
		h1, h2 := fnv.New64a(), fnv.New64a()
		data, err := s.Read(ctx, c, n, 0, 0)
		if err != nil {
			return fmt.Sprintf("read %s: %v", n, err)
		}
		attrs, _ := s.GetAttrs(ctx, c, n)
		om := map[string][]byte{}
		_ = s.OmapIterate(ctx, c, n, "", func(k string, v []byte) bool { om[k] = bytes.Clone(v); return true })
		hdr, _ := s.OmapGetHeader(ctx, c, n)
		got := &mobj{data: data, xattrs: attrs, omap: om, header: hdr}
		digestObject(h1, n, got)
		digestObject(h2, n, objs[n])
		if h1.Sum64() == h2.Sum64() {
			continue
		}
		o := objs[n]
		i := 0
		for i < min(len(data), len(o.data)) && data[i] == o.data[i] {
			i++
		}
		return fmt.Sprintf("object %s: %d bytes, model %d, first data difference at %d; xattrs %q, model %q; omap %q, model %q; header %q, model %q",
			n, len(data), len(o.data), i, attrs, o.xattrs, om, o.omap, hdr, o.header)
	}
	return "no difference"
}
