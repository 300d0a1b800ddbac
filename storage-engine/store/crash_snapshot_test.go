package store

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev/faultdev"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// The snapshot workload mirrors node-daemon/volume's transactions: a volume-like collection "vol"
// of a meta object and stripe objects, snapshots taken as one transaction that creates a
// collection "snap.N" and clones every object of "vol" (meta included) into it, and snapshot
// deletions done as the volume layer does them (mark the meta object, remove the stripes in
// batches, then meta and the collection), so a deletion spans transactions and a cut can stop it
// half way.
const snapVol = "vol"

// nextSnapTxn picks the next transaction of the workload from the state m it applies to.
func nextSnapTxn(rng *rand.Rand, m *model, seq *int) *Transaction {
	var snaps []string
	for c := range m.colls {
		if strings.HasPrefix(c, "snap.") {
			snaps = append(snaps, c)
		}
	}
	slices.Sort(snaps)
	txn := NewTransaction()
	r := rng.IntN(100)
	switch {
	case r < 20 && len(snaps) < 4:
		*seq++
		c := fmt.Sprintf("snap.%d", *seq)
		txn.CreateCollection(c)
		for _, o := range slices.Sorted(maps.Keys(m.colls[snapVol])) {
			txn.CloneTo(snapVol, o, c, o)
		}
	case r < 35 && len(snaps) > 0:
		// As volume.DeleteSnapshot: mark the meta object, remove the stripes in batches, then
		// the meta object with the collection.
		c := snaps[rng.IntN(len(snaps))]
		meta := m.colls[c]["meta"]
		if _, marked := meta.xattrs["deleting"]; !marked {
			txn.SetAttr(c, "meta", "deleting", []byte{1})
			break
		}
		var stripes []string
		for _, o := range slices.Sorted(maps.Keys(m.colls[c])) {
			if o != "meta" {
				stripes = append(stripes, o)
			}
		}
		if len(stripes) == 0 {
			txn.Remove(c, "meta").RemoveCollection(c)
			break
		}
		for _, o := range stripes[:min(len(stripes), 3)] {
			txn.Remove(c, o)
		}
	default:
		// Writes of one to a few stripes: small (deferred, in place when unshared) and large
		// (copy-on-write) writes, some over units a snapshot shares.
		for range 1 + rng.IntN(2) {
			o := fmt.Sprintf("s.%d", rng.IntN(6))
			off := uint64(rng.IntN(64 << 10))
			n := 1 + rng.IntN(12<<10)
			if rng.IntN(4) == 0 {
				off, n = off/4096*4096, 64<<10
			}
			txn.Write(snapVol, o, off, pattern(n, byte(rng.Uint32())))
		}
	}
	return txn
}

// storeMatches reports whether the store holds exactly the collections of m with their contents.
func storeMatches(t *testing.T, s *Store, m *model) bool {
	colls, err := s.ListCollections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(colls, slices.Sorted(maps.Keys(m.colls))) {
		return false
	}
	for _, c := range colls {
		if collectionDigest(t, s, c) != modelDigest(m, c) {
			return false
		}
	}
	return true
}

// TestCrashSnapshots cuts the power at random points of a workload that writes a volume's
// stripes, snapshots it by cloning every stripe into a new collection in one transaction, and
// deletes snapshots in batches. After each cut the remounted store must pass a deep fsck (shared
// reference counts equal to the references, no leaked or doubly used space) and hold exactly the
// state after the acknowledged transactions, plus or minus the one in flight: a snapshot is all
// there or absent, acknowledged writes are in the volume, and each snapshot keeps the data the
// volume had when it was taken. At the end every snapshot and the volume are deleted and the used
// space must be what it was on the empty store.
func TestCrashSnapshots(t *testing.T) {
	cuts := crashCuts(t, 60)
	seed := uint64(1)
	if v := os.Getenv("COBALT_CRASH_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	rng := rand.New(rand.NewPCG(seed, 14))
	mem := blockdev.NewMem(32<<20, 4096)
	fs := vfs.NewCrashableMem()
	opts := Options{FS: fs, PreferDeferredSize: 16 << 10, DeferredBatch: 64, DeferredInterval: time.Hour, verifyShards: true}
	if _, err := Mkfs(ctx, mem, "db", MkfsOptions{FS: fs}); err != nil {
		t.Fatal(err)
	}
	var emptyUsed uint64
	{
		s, err := Open(ctx, mem, "db", opts)
		if err != nil {
			t.Fatal(err)
		}
		emptyUsed = s.Statfs().Used
		commit(t, s, NewTransaction().CreateCollection(snapVol).Touch(snapVol, "meta").SetAttr(snapVol, "meta", "size", []byte{1}))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	m := newModel()
	m.colls[snapVol] = map[string]*mobj{"meta": {xattrs: map[string][]byte{"size": {1}}, omap: map[string][]byte{}}}
	// pending: the transactions since the last verified state, with whether each was
	// acknowledged; only the last one can be in flight at a cut (the worker waits for each).
	var pending []*Transaction
	inFlight := false
	seq := 0
	var applied, snapshotsTaken, snapshotsDeleted, duringMount int
	verify := func(what string, s *Store) {
		t.Helper()
		r, err := s.Fsck(ctx, true)
		if err != nil || !r.OK() {
			t.Fatalf("%s: fsck: %v %+v", what, err, r)
		}
		cur := m
		for i, txn := range pending {
			if i == len(pending)-1 && inFlight {
				break
			}
			cur, _ = applyModel(cur, txn)
		}
		cands := []*model{cur}
		if inFlight {
			with, _ := applyModel(cur, pending[len(pending)-1])
			cands = append(cands, with)
		}
		for _, c := range cands {
			if storeMatches(t, s, c) {
				m, pending, inFlight = c, nil, false
				return
			}
		}
		t.Fatalf("%s: the store matches none of the %d allowed states (%d transactions since the last check, last in flight: %v)", what, len(cands), len(pending), inFlight)
	}
	for cut := range cuts {
		dev, err := faultdev.New(mem, faultdev.Options{})
		if err != nil {
			t.Fatal(err)
		}
		byOp := rng.IntN(2) == 0
		if byOp {
			dev.PowerCutAfter(faultdev.OpWrite|faultdev.OpFlush, rng.IntN(80))
		}
		s, openErr := Open(ctx, dev, "db", opts)
		if openErr != nil {
			if !dev.PoweredOff() {
				t.Fatalf("cut %d: Open failed without a power cut: %v", cut, openErr)
			}
			duringMount++
		} else {
			verify(fmt.Sprintf("cut %d", cut), s)
			stopAfter := 1 + rng.IntN(25)
			cur := m
			for i := 0; i < 40 && !dev.PoweredOff(); i++ {
				txn := nextSnapTxn(rng, cur, &seq)
				next, ok := applyModel(cur, txn)
				if !ok {
					t.Fatalf("cut %d: the workload built a transaction the model refuses", cut)
				}
				pending, inFlight = append(pending, txn), true
				err := s.Commit(ctx, txn)
				if err != nil {
					if !dev.PoweredOff() {
						t.Fatalf("cut %d: commit failed with the device on: %v", cut, err)
					}
					break // in flight at the cut: either outcome is allowed
				}
				inFlight = false
				applied++
				if last := txn.ops[len(txn.ops)-1]; strings.HasPrefix(last.c, "snap.") && last.kind == opRemoveCollection {
					snapshotsDeleted++
				} else if strings.HasPrefix(txn.ops[0].c, "snap.") && txn.ops[0].kind == opCreateCollection {
					snapshotsTaken++
				}
				cur = next
				if !byOp && i == stopAfter {
					break
				}
			}
			dev.PowerCut()
		}
		clone := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rand.New(rand.NewPCG(rng.Uint64(), 0))})
		if s != nil {
			_ = s.Close() // fails: the device is off
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
	defer func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}()
	verify("final", s)
	// Delete everything: the space in use must return to the empty store's.
	for _, c := range slices.Sorted(maps.Keys(m.colls)) {
		txn := NewTransaction()
		for o := range m.colls[c] {
			txn.Remove(c, o)
		}
		commit(t, s, txn.RemoveCollection(c))
	}
	mustCheck(t, s)
	if got := s.Statfs().Used; got != emptyUsed {
		t.Fatalf("used space %d after deleting every snapshot and the volume, %d on the empty store", got, emptyUsed)
	}
	t.Logf("%d power cuts (%d during mount), %d acknowledged transactions verified, %d snapshots taken, %d deletions finished",
		cuts, duringMount, applied, snapshotsTaken, snapshotsDeleted)
}
