package metafs

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev/faultdev"
	"github.com/cockroachdb/pebble/v2"
)

// crashCuts is how many power cuts TestPebbleCrash makes (COBALT_METAFS_CUTS overrides it, for
// soaks).
func crashCuts(t *testing.T) int {
	if s := os.Getenv("COBALT_METAFS_CUTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("COBALT_METAFS_CUTS=%q: %v", s, err)
		}
		return n
	}
	if testing.Short() {
		return 5
	}
	return 30
}

// TestPebbleCrash takes post-cut images of the device at random instants while pebble commits
// synced batches (through memtable flushes, compactions and journal compactions): in each image
// every write not flushed before the instant was kept, lost or torn per sector. Each image must
// check clean, mount, and hold every batch whose commit returned before the instant, whole.
//
// The images are taken without stopping the device (faultdev.CrashImage): pebble panics, and
// then dies on an unlock of an unlocked mutex, when its WAL fails under it, so the run continues
// and ends with a clean close instead.
func TestPebbleCrash(t *testing.T) {
	cuts := crashCuts(t)
	seed := rand.Uint64()
	t.Logf("seed %d (cuts %d)", seed, cuts)
	rng := rand.New(rand.NewPCG(seed, 1))
	const perRun = 5
	for run := 0; run*perRun < cuts; run++ {
		t.Run(fmt.Sprint(run), func(t *testing.T) { crashRun(t, rng, perRun) })
	}
}

// crashImage is a post-cut image and what had been acknowledged when it was taken.
type crashImage struct {
	img   *blockdev.MemDevice
	acked map[int]int
}

func crashRun(t *testing.T, rng *rand.Rand, images int) {
	base := blockdev.NewMem(128<<20, 4096)
	// A small journal makes journal compactions happen during the run too.
	o := Options{JournalSize: 64 << 10, Unit: 16 << 10}
	region := Extent{Offset: 1 << 20, Length: 64 << 20}
	if err := Format(base, region, o); err != nil {
		t.Fatal(err)
	}
	dev, err := faultdev.New(base, faultdev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fs, err := Mount(dev, region, o)
	if err != nil {
		t.Fatal(err)
	}
	db, err := pebble.Open("/db", &pebble.Options{FS: fs, MemTableSize: 256 << 10, L0CompactionThreshold: 2, Logger: discardLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := map[int]int{} // key -> generation of the last acknowledged write
	stop := make(chan struct{})
	done := make(chan error, 1)
	batchRng := rand.New(rand.NewPCG(rng.Uint64(), 2))
	go func() {
		for gen := 0; ; gen++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			batch := db.NewBatch()
			keys := make([]int, 1+batchRng.IntN(40))
			for i := range keys {
				keys[i] = batchRng.IntN(3000)
				if err := batch.Set(key(keys[i]), genValue(keys[i], gen), nil); err != nil {
					done <- err
					return
				}
			}
			if err := batch.Commit(pebble.Sync); err != nil {
				done <- err
				return
			}
			mu.Lock()
			for _, k := range keys {
				acked[k] = gen
			}
			mu.Unlock()
		}
	}()
	// Take each image once the device has seen a random number of further writes and flushes.
	var taken []crashImage
	ops := func() int64 { st := dev.Stats(); return st.Writes + st.Flushes }
	tick := time.NewTicker(200 * time.Microsecond)
	defer tick.Stop()
	for range images {
		at := ops() + 1 + rng.Int64N(1500)
		for ops() < at {
			select {
			case err := <-done:
				t.Fatalf("writer stopped: %v", err)
			case <-tick.C:
			}
		}
		mu.Lock()
		img, _, err := dev.CrashImage(rng)
		want := maps.Clone(acked)
		mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		taken = append(taken, crashImage{img: img, acked: want})
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fs.Close(); err != nil {
		t.Fatal(err)
	}
	for i, c := range taken {
		verifyImage(t, fmt.Sprintf("image %d", i), c, region, o)
	}
}

func verifyImage(t *testing.T, name string, c crashImage, region Extent, o Options) {
	t.Helper()
	if _, err := Check(c.img, region, o); err != nil {
		t.Fatalf("%s: check before mount: %v", name, err)
	}
	fs, err := Mount(c.img, region, o)
	if err != nil {
		t.Fatalf("%s: mount: %v", name, err)
	}
	db, err := pebble.Open("/db", &pebble.Options{FS: fs, MemTableSize: 256 << 10, Logger: discardLogger{}})
	if err != nil {
		t.Fatalf("%s: pebble open: %v", name, err)
	}
	// A key may hold a later generation than the last acknowledged one (a commit that reached
	// the device before its acknowledgement was counted), never an earlier one.
	for k, gen := range c.acked {
		v, closer, err := db.Get(key(k))
		if err != nil {
			t.Fatalf("%s: key %d acknowledged at generation %d: %v", name, k, gen, err)
		}
		got, err := parseGenValue(k, v)
		_ = closer.Close()
		if err != nil || got < gen {
			t.Fatalf("%s: key %d acknowledged at generation %d: holds generation %d (%v)", name, k, gen, got, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if _, err := fs.Check(); err != nil {
		t.Fatalf("%s: check after pebble's recovery: %v", name, err)
	}
	if err := fs.Close(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// genValue is key k's value written by batch gen: the generation, then bytes derived from both.
func genValue(k, gen int) []byte {
	return append(fmt.Appendf(nil, "%08d:", gen), value(k, gen)...)
}

func parseGenValue(k int, v []byte) (int, error) {
	if len(v) < 9 || v[8] != ':' {
		return -1, fmt.Errorf("malformed value of %d bytes", len(v))
	}
	gen, err := strconv.Atoi(string(v[:8]))
	if err != nil {
		return -1, err
	}
	if string(v) != string(genValue(k, gen)) {
		return gen, fmt.Errorf("value of generation %d is damaged", gen)
	}
	return gen, nil
}
