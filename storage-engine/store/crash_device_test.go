package store

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev/faultdev"
)

// TestCrashRecoveryMetaOnDevice is TestCrashRecovery for a store whose metadata database is on
// its device (storage-engine/metafs): the whole store is one device, so one post-power-cut image
// of it (unflushed writes kept, lost or torn per sector) is one crash. pebble cannot survive its
// device failing under it, so the device is never stopped: images are taken with
// faultdev.CrashImage at random instants (during the mount that recovers the previous crash, and
// while three workers commit deferred and copy-on-write overwrites, clones and omap changes), the
// workers then finish and the store closes cleanly. Each image is mounted and must pass a deep
// fsck (which also checks the metadata region) and hold, in every collection, the state after a
// prefix of its transactions that includes every one acknowledged before the image was taken.
// The last image of a round is where the next round starts, so later images catch the mount's
// recovery (deferred-write replay, WAL replay, the metadata journal's compaction) in progress.
func TestCrashRecoveryMetaOnDevice(t *testing.T) {
	runCrashImages(t, crashCuts(t, 80), Options{})
}

// TestCrashRecoveryMetaOnDeviceBufferedWrites is TestCrashRecoveryMetaOnDevice with
// Options.BufferedWrites; the workers read their objects back after each acknowledged commit.
func TestCrashRecoveryMetaOnDeviceBufferedWrites(t *testing.T) {
	runCrashImages(t, crashCuts(t, 20), Options{BufferedWrites: true})
}

// TestCrashRecoveryMetaOnDeviceGrowing is TestCrashRecoveryMetaOnDevice with a metadata space
// that keeps growing into the data space (metagrow.go), a megabyte at a time: images are taken
// while metafs records the extents it is given, and each must mount with the data allocator and
// the metadata file system agreeing on who owns them (deep fsck).
func TestCrashRecoveryMetaOnDeviceGrowing(t *testing.T) {
	runCrashImages(t, crashCuts(t, 30), Options{metaGrowSlack: 3 << 20, metaGrowStep: 1 << 20})
}

// TestCrashRecoveryMetaOnSeparateDevice is TestCrashRecoveryMetaOnDevice for a store whose
// metadata is on a separate metadata device (MkfsOptions.MetadataDevice): one power cut hits both
// devices at one instant (faultdev.CrashImages), each keeping, losing or tearing its own unflushed
// writes, and the pair of images must mount together and hold every acknowledged transaction.
func TestCrashRecoveryMetaOnSeparateDevice(t *testing.T) {
	runCrashImages(t, crashCuts(t, 40), Options{MetadataDevice: blockdev.NewMem(8<<20+64<<10, 4096)})
}

// crashImageSnap is a post-cut image of the devices (the store's, then its metadata device if
// separate) and the workers as they were at that instant.
type crashImageSnap struct {
	imgs []*blockdev.MemDevice
	ws   []*crashWorker
	ops  int64 // the devices' writes and flushes before the image
}

// imagesPerRound is how many images a round aims to take; imageGap bounds the device writes and
// flushes between two of them (a round of 3×30 transactions makes about 350).
const (
	imagesPerRound = 3
	imageGap       = 200
)

// runCrashImages takes images crash images (COBALT_CRASH_CUTS overrides the default) of a store
// with base options (the test sets the deferred-write options); with base.BufferedWrites the
// workers check reads after each acknowledged commit. With base.MetadataDevice (a MemDevice) the
// store is made with its metadata there, and each image is of both devices.
func runCrashImages(t *testing.T, images int, base Options) {
	seed := uint64(1)
	if v := os.Getenv("COBALT_CRASH_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	rng := rand.New(rand.NewPCG(seed, 43))
	start := time.Now()
	// A small device has a small metadata region (8 MiB, a 1 MiB memtable), so the runs cross
	// memtable flushes, compactions and metadata journal compactions.
	// A separate metadata device is as small.
	mems := []*blockdev.MemDevice{blockdev.NewMem(32<<20, 4096)}
	opts := base
	opts.PreferDeferredSize, opts.DeferredBatch, opts.DeferredInterval = 16<<10, 64, time.Hour
	opts.verifyShards = true
	if base.MetadataDevice != nil {
		mems = append(mems, base.MetadataDevice.(*blockdev.MemDevice))
	}
	withImages := func(imgs []*blockdev.MemDevice) Options {
		o := opts
		if len(imgs) > 1 {
			o.MetadataDevice = imgs[1]
		}
		return o
	}
	if _, err := Mkfs(ctx, mems[0], "", MkfsOptions{MetadataDevice: withImages(mems).MetadataDevice}); err != nil {
		t.Fatal(err)
	}
	ws, setup := newCrashWorkers(3)
	{
		s, err := Open(ctx, mems[0], "", withImages(mems))
		if err != nil {
			t.Fatal(err)
		}
		commit(t, s, setup)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	var taken, rounds, applied, uncertain, inMount, replayed, grownImages int
	verifyImage := func(what string, imgs []*blockdev.MemDevice, ws []*crashWorker) {
		s, err := Open(ctx, imgs[0], "", withImages(imgs))
		if err != nil {
			t.Fatalf("%s: mount: %v", what, err)
		}
		if s.MetadataOnSeparateDevice() != (len(imgs) > 1) {
			t.Fatalf("%s: mounted with its metadata in %s", what, s.MetadataLocation())
		}
		if s.Metrics().DeferredReplayed > 0 {
			replayed++
		}
		if s.Statfs().MetadataGrown > 0 {
			grownImages++
		}
		a, u := verifyWorkers(t, what, s, ws)
		applied, uncertain = applied+a, uncertain+u
		if err := s.Close(); err != nil {
			t.Fatalf("%s: close: %v", what, err)
		}
	}
	for ; taken < images; rounds++ {
		devs := make([]*faultdev.Device, len(mems))
		for i, m := range mems {
			d, err := faultdev.New(m, faultdev.Options{})
			if err != nil {
				t.Fatal(err)
			}
			devs[i] = d
		}
		dev := devs[0]
		im := startImager(devs, rng, ws, min(imagesPerRound, images-taken))
		// This mount recovers from the previous round's last image.
		o := opts
		if len(devs) > 1 {
			o.MetadataDevice = devs[1]
		}
		s, err := Open(ctx, dev, "", o)
		if err != nil {
			t.Fatalf("round %d: mount: %v", rounds, err)
		}
		mountOps := deviceOps(devs)
		a, u := verifyWorkers(t, fmt.Sprintf("round %d mount", rounds), s, ws)
		applied, uncertain = applied+a, uncertain+u
		if err := commitWorkers(s, dev, ws, rng, 30, base.BufferedWrites); err != nil {
			t.Fatalf("round %d: %v", rounds, err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("round %d: close: %v", rounds, err)
		}
		snaps := im.stop()
		taken += len(snaps)
		for _, sn := range snaps {
			if sn.ops < mountOps {
				inMount++
			}
		}
		for i, sn := range snaps[:max(len(snaps)-1, 0)] {
			verifyImage(fmt.Sprintf("round %d image %d", rounds, i), sn.imgs, sn.ws)
		}
		if n := len(snaps); n > 0 {
			mems, ws = snaps[n-1].imgs, snaps[n-1].ws
		} else {
			for i, d := range devs {
				mems[i] = d.CurrentImage() // closed cleanly: every outcome is known
			}
		}
	}
	verifyImage("final image", mems, ws)
	t.Logf("%d crash images in %d rounds (%v), %d taken during a mount, %d mounts of an image replayed deferred writes, %d found grown metadata space; %d acknowledged transactions verified, %d in flight at an image",
		taken, rounds, time.Since(start).Round(time.Millisecond), inMount, replayed, grownImages, applied, uncertain)
	if base.metaGrowStep > 0 && grownImages == 0 {
		t.Fatalf("the metadata space was to grow, and no image found it grown")
	}
}

// imager takes crash images of a device in the background, each once the device has seen a
// random number of further writes and flushes.
type imager struct {
	stopc chan struct{}
	done  chan []crashImageSnap
}

// deviceOps is the writes and flushes the devices have seen.
func deviceOps(devs []*faultdev.Device) int64 {
	var n int64
	for _, d := range devs {
		st := d.Stats()
		n += st.Writes + st.Flushes
	}
	return n
}

// startImager starts taking up to n images of devs, all cut at one instant each time. Each image
// is taken under the workers' mutex together with their snapshots, so a transaction acknowledged
// before the image is applied in the snapshot, and one not yet acknowledged is uncertain.
func startImager(devs []*faultdev.Device, rng *rand.Rand, ws []*crashWorker, n int) *imager {
	im := &imager{stopc: make(chan struct{}), done: make(chan []crashImageSnap, 1)}
	irng := rand.New(rand.NewPCG(rng.Uint64(), 5))
	ops := func() int64 { return deviceOps(devs) }
	go func() {
		var snaps []crashImageSnap
		defer func() { im.done <- snaps }()
		tick := time.NewTicker(100 * time.Microsecond)
		defer tick.Stop()
		for len(snaps) < n {
			gap := 1 + irng.Int64N(imageGap)
			if len(snaps) == 0 && irng.IntN(4) == 0 {
				gap = 1 + irng.Int64N(40) // inside the mount's recovery
			}
			for at := ops() + gap; ops() < at; {
				select {
				case <-im.stopc:
					return
				case <-tick.C:
				}
			}
			ws[0].mu.Lock()
			imgs, _, err := faultdev.CrashImages(rand.New(rand.NewPCG(irng.Uint64(), 6)), devs...)
			if err != nil {
				ws[0].mu.Unlock()
				panic(err) // a MemDevice clone cannot fail
			}
			sn := crashImageSnap{imgs: imgs, ws: make([]*crashWorker, len(ws)), ops: ops()}
			mu := new(sync.Mutex) // the snapshots' workers share one too
			for i, w := range ws {
				sn.ws[i] = w.snapshotLocked(mu)
			}
			ws[0].mu.Unlock()
			snaps = append(snaps, sn)
		}
	}()
	return im
}

// stop stops taking images and returns those taken.
func (im *imager) stop() []crashImageSnap {
	close(im.stopc)
	return <-im.done
}

// commitWorkers runs each worker's next n random transactions, the workers concurrently, each
// waiting for its commits, and records their outcomes. The device works throughout: a commit the
// model says must succeed has to. With checkReads each worker reads its collection back after
// each acknowledged commit.
func commitWorkers(s *Store, dev *faultdev.Device, ws []*crashWorker, rng *rand.Rand, n int, checkReads bool) error {
	errs := make([]error, len(ws))
	var wg sync.WaitGroup
	for i, w := range ws {
		wr := rand.New(rand.NewPCG(rng.Uint64(), 3))
		m := w.base // verified: the worker has no transactions of unknown outcome
		wg.Go(func() {
			for range n {
				txn := randomTxnIn(wr, 200000, []string{w.coll}, false)
				next, ok := applyModel(m, txn)
				w.begin(txn)
				err := s.Commit(ctx, txn)
				switch {
				case err == nil && !ok:
					errs[i] = fmt.Errorf("worker %s: commit succeeded, model expected failure", w.coll)
					return
				case err != nil && ok:
					errs[i] = fmt.Errorf("worker %s: commit failed: %w", w.coll, err)
					return
				case err != nil:
					w.settle(outcomeFailed)
					continue
				}
				w.settle(outcomeApplied)
				m = next
				if checkReads {
					if err := checkCollectionReads(s, dev, m, w.coll); err != nil {
						errs[i] = fmt.Errorf("worker %s: %w", w.coll, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
