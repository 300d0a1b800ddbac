package faultdev_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"sync"
	"syscall"
	"testing"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev/blockdevtest"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev/faultdev"
)

func newDev(t *testing.T, opts faultdev.Options) *faultdev.Device {
	t.Helper()
	d, err := faultdev.New(blockdev.NewMem(4<<20, 4096), opts)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func block(seed uint64, n int) []byte {
	b := blockdev.AlignedBuffer(n)
	blockdevtest.Pattern(b, seed)
	return b
}

func read(t *testing.T, d blockdev.Device, off int64, n int) []byte {
	t.Helper()
	b := blockdev.AlignedBuffer(n)
	if _, err := d.ReadAt(b, off); err != nil {
		t.Fatalf("ReadAt(%d, %d): %v", n, off, err)
	}
	return b
}

func write(t *testing.T, d blockdev.Device, p []byte, off int64) {
	t.Helper()
	if _, err := d.WriteAt(p, off); err != nil {
		t.Fatalf("WriteAt(%d, %d): %v", len(p), off, err)
	}
}

func TestConformance(t *testing.T) {
	blockdevtest.Run(t, func(t *testing.T) blockdev.Device { return newDev(t, faultdev.Options{}) })
}

func TestNewRejectsBadSectorSize(t *testing.T) {
	for _, ss := range []int{-512, 3, 1000, 8192} {
		if _, err := faultdev.New(blockdev.NewMem(1<<20, 4096), faultdev.Options{SectorSize: ss}); err == nil {
			t.Errorf("SectorSize %d accepted", ss)
		}
	}
}

// TestCrashKeepsFlushedAndModelsPending checks every crash image against the contract: flushed data
// survives; each pending write is kept, lost or torn at a sector boundary exactly as reported.
func TestCrashKeepsFlushedAndModelsPending(t *testing.T) {
	const bs = 4096
	seen := map[string]int{}
	for seed := range uint64(200) {
		d := newDev(t, faultdev.Options{})
		flushed := block(1000+seed, 2*bs)
		write(t, d, flushed, 0)
		if err := d.Flush(); err != nil {
			t.Fatal(err)
		}
		old := block(2000+seed, 4*bs) // durable contents under the pending writes
		write(t, d, old, 8*bs)
		if err := d.Flush(); err != nil {
			t.Fatal(err)
		}
		// Pending: two overlapping writes and one elsewhere.
		w1, w2, w3 := block(3000+seed, 4*bs), block(4000+seed, bs), block(5000+seed, 3*bs)
		write(t, d, w1, 8*bs)
		write(t, d, w2, 9*bs)
		write(t, d, w3, 20*bs)
		if got := d.Stats().Pending; got != 3 {
			t.Fatalf("pending = %d, want 3", got)
		}
		img, outs, err := d.CrashReport(rand.New(rand.NewPCG(seed, 7)))
		if err != nil {
			t.Fatal(err)
		}
		if len(outs) != 3 {
			t.Fatalf("%d outcomes, want 3", len(outs))
		}
		if !bytes.Equal(read(t, img, 0, 2*bs), flushed) {
			t.Fatalf("seed %d: flushed data lost", seed)
		}
		// Model: durable image, then each write's persisted prefix in issue order.
		model := make([]byte, 32*bs)
		copy(model, flushed)
		copy(model[8*bs:], old)
		for i, w := range [][]byte{w1, w2, w3} {
			o := outs[i]
			if o.Length != int64(len(w)) || o.Persisted < 0 || o.Persisted > o.Length || o.Persisted%512 != 0 {
				t.Fatalf("seed %d: bad outcome %+v", seed, o)
			}
			copy(model[o.Offset:], w[:o.Persisted])
			switch o.Persisted {
			case 0:
				seen["lost"]++
			case o.Length:
				seen["kept"]++
			default:
				seen["torn"]++
			}
		}
		if !bytes.Equal(read(t, img, 0, 32*bs), model) {
			t.Fatalf("seed %d: crash image differs from model of outcomes %+v", seed, outs)
		}
		// The device is off now.
		if _, err := d.ReadAt(blockdev.AlignedBuffer(bs), 0); !errors.Is(err, faultdev.ErrPoweredOff) {
			t.Fatalf("read after crash: %v, want ErrPoweredOff", err)
		}
	}
	for _, k := range []string{"kept", "lost", "torn"} {
		if seen[k] < 50 {
			t.Errorf("outcome %q seen %d times in 600 writes; want each of the three often", k, seen[k])
		}
	}
}

func TestCrashDeterministic(t *testing.T) {
	run := func() ([]byte, []faultdev.Outcome) {
		d := newDev(t, faultdev.Options{})
		for i := range 20 {
			write(t, d, block(uint64(i), 8*4096), int64(i%7)*4096*3)
		}
		img, outs, err := d.CrashReport(rand.New(rand.NewPCG(42, 42)))
		if err != nil {
			t.Fatal(err)
		}
		// Crash is repeatable on the frozen state: a second call with the same seed agrees.
		img2, err := d.Crash(rand.New(rand.NewPCG(42, 42)))
		if err != nil {
			t.Fatal(err)
		}
		a, b := read(t, img, 0, 1<<20), read(t, img2, 0, 1<<20)
		if !bytes.Equal(a, b) {
			t.Fatal("two Crash calls with the same seed differ")
		}
		return a, outs
	}
	a, oa := run()
	b, ob := run()
	if !bytes.Equal(a, b) || len(oa) != len(ob) {
		t.Fatal("same seed, different crash image")
	}
	for i := range oa {
		if oa[i] != ob[i] {
			t.Fatalf("outcome %d differs: %+v vs %+v", i, oa[i], ob[i])
		}
	}
}

func TestTornAtBlockGranularity(t *testing.T) {
	d := newDev(t, faultdev.Options{SectorSize: 4096})
	write(t, d, block(1, 16*4096), 0)
	for seed := range uint64(50) {
		_, outs, err := d.CrashReport(rand.New(rand.NewPCG(seed, 1)))
		if err != nil {
			t.Fatal(err)
		}
		if outs[0].Persisted%4096 != 0 {
			t.Fatalf("torn at %d, not a 4096-byte sector boundary", outs[0].Persisted)
		}
	}
}

func TestImages(t *testing.T) {
	d := newDev(t, faultdev.Options{})
	a, b := block(1, 4096), block(2, 4096)
	write(t, d, a, 0)
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	write(t, d, b, 0)
	if !bytes.Equal(read(t, d.DurableImage(), 0, 4096), a) {
		t.Fatal("DurableImage shows unflushed data")
	}
	if !bytes.Equal(read(t, d.CurrentImage(), 0, 4096), b) {
		t.Fatal("CurrentImage misses the pending write")
	}
	if d.PoweredOff() {
		t.Fatal("images cut the power")
	}
}

func TestFailNextWrite(t *testing.T) {
	d := newDev(t, faultdev.Options{})
	d.FailNext(faultdev.OpWrite, 2, syscall.ENOSPC)
	b := block(1, 4096)
	for i := range 2 {
		_, err := d.WriteAt(b, 0)
		if !errors.Is(err, syscall.ENOSPC) || !errors.Is(err, faultdev.ErrInjected) {
			t.Fatalf("write %d: %v, want injected ENOSPC", i, err)
		}
	}
	if !bytes.Equal(read(t, d, 0, 4096), make([]byte, 4096)) {
		t.Fatal("a failed write changed the device")
	}
	write(t, d, b, 0)
	if st := d.Stats(); st.Injected != 2 || st.Writes != 3 || st.Pending != 1 || st.Reads != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFailAfterAndRange(t *testing.T) {
	d := newDev(t, faultdev.Options{})
	d.FailAfter(faultdev.OpRead, 3, nil) // nil error means EIO
	for i := range 3 {
		read(t, d, int64(i)*4096, 4096)
	}
	for range 3 {
		if _, err := d.ReadAt(blockdev.AlignedBuffer(4096), 0); !errors.Is(err, syscall.EIO) {
			t.Fatalf("read after 3: %v, want EIO", err)
		}
	}
	d.ClearRules()
	read(t, d, 0, 4096)

	// A range rule only hits I/O that overlaps [64K, 68K).
	d.Inject(faultdev.Rule{Ops: faultdev.OpRead | faultdev.OpWrite, Offset: 64 << 10, Length: 4096, Err: syscall.EIO})
	read(t, d, 60<<10, 4096)
	read(t, d, 68<<10, 4096)
	if _, err := d.ReadAt(blockdev.AlignedBuffer(8192), 60<<10); !errors.Is(err, syscall.EIO) {
		t.Fatalf("overlapping read: %v, want EIO", err)
	}
	if _, err := d.WriteAt(blockdev.AlignedBuffer(4096), 64<<10); !errors.Is(err, syscall.EIO) {
		t.Fatalf("overlapping write: %v, want EIO", err)
	}
	if err := d.Flush(); err != nil {
		t.Fatalf("flush is not an op of the rule: %v", err)
	}
}

func TestFailedFlushKeepsPending(t *testing.T) {
	d := newDev(t, faultdev.Options{})
	b := block(1, 4096)
	write(t, d, b, 0)
	d.FailNext(faultdev.OpFlush, 1, syscall.EIO)
	if err := d.Flush(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("flush: %v, want EIO", err)
	}
	if d.Stats().Pending != 1 || !bytes.Equal(read(t, d.DurableImage(), 0, 4096), make([]byte, 4096)) {
		t.Fatal("failed flush made data durable")
	}
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	if d.Stats().Pending != 0 || !bytes.Equal(read(t, d.DurableImage(), 0, 4096), b) {
		t.Fatal("second flush did not make data durable")
	}
}

func TestPowerCutAfter(t *testing.T) {
	d := newDev(t, faultdev.Options{})
	d.PowerCutAfter(faultdev.OpWrite, 2)
	write(t, d, block(1, 4096), 0)
	write(t, d, block(2, 4096), 4096)
	if _, err := d.WriteAt(block(3, 4096), 8192); !errors.Is(err, faultdev.ErrPoweredOff) {
		t.Fatalf("third write: %v, want ErrPoweredOff", err)
	}
	if err := d.Flush(); !errors.Is(err, faultdev.ErrPoweredOff) {
		t.Fatalf("flush after cut: %v, want ErrPoweredOff", err)
	}
	_, outs, err := d.CrashReport(rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 2 {
		t.Fatalf("%d pending writes at the cut, want 2 (the cut write is not one)", len(outs))
	}
}

func TestFlipBit(t *testing.T) {
	d := newDev(t, faultdev.Options{})
	b := block(1, 4096)
	write(t, d, b, 0)
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := d.FlipBit(100, 5); err != nil {
		t.Fatal(err)
	}
	want := append([]byte(nil), b...)
	want[100] ^= 1 << 5
	if !bytes.Equal(read(t, d, 0, 4096), want) || !bytes.Equal(read(t, d.DurableImage(), 0, 4096), want) {
		t.Fatal("flip not visible in both images")
	}
	if err := d.FlipBit(4<<20, 0); !errors.Is(err, blockdev.ErrOutOfRange) {
		t.Fatalf("flip outside device: %v", err)
	}
}

// TestConcurrentCrash cuts the power while writers run: the image still holds every write that was
// flushed before the cut, and the race detector sees no unsynchronised access.
func TestConcurrentCrash(t *testing.T) {
	d := newDev(t, faultdev.Options{})
	const workers = 4
	var wg sync.WaitGroup
	durable := make([][]int64, workers) // offsets each worker saw flushed
	for w := range workers {
		wg.Go(func() {
			for i := range 64 {
				off := int64(w*64+i) * 4096
				if _, err := d.WriteAt(block(uint64(off), 4096), off); err != nil {
					return
				}
				if err := d.Flush(); err != nil {
					return
				}
				durable[w] = append(durable[w], off)
			}
		})
	}
	d.PowerCutAfter(faultdev.OpWrite, 100)
	wg.Wait()
	img, err := d.Crash(rand.New(rand.NewPCG(3, 3)))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, offs := range durable {
		for _, off := range offs {
			n++
			if !bytes.Equal(read(t, img, off, 4096), block(uint64(off), 4096)) {
				t.Fatalf("flushed block at %d lost", off)
			}
		}
	}
	if n == 0 || n > 100 {
		t.Fatalf("%d blocks flushed before a cut at the 101st write", n)
	}
}

func TestClose(t *testing.T) {
	d := newDev(t, faultdev.Options{})
	write(t, d, block(1, 4096), 0)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); !errors.Is(err, blockdev.ErrClosed) {
		t.Fatalf("second close: %v", err)
	}
	if _, err := d.Crash(rand.New(rand.NewPCG(1, 1))); err != nil {
		t.Fatalf("Crash after Close: %v", err)
	}
	if faultdev.OpAny.String() != "read|write|flush" || faultdev.Op(0).String() != "none" {
		t.Fatal("Op.String")
	}
}

// TestCrashImageKeepsRunning: CrashImage models a cut at that instant (flushed data kept, the
// same outcomes as CrashReport for the same seed) while the device keeps serving I/O.
func TestCrashImageKeepsRunning(t *testing.T) {
	d := newDev(t, faultdev.Options{})
	flushed := block(1, 4096)
	write(t, d, flushed, 0)
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		write(t, d, block(uint64(10+i), 3*4096), int64(1+i)*4096*3)
	}
	img, outs, err := d.CrashImage(rand.New(rand.NewPCG(7, 7)))
	if err != nil {
		t.Fatal(err)
	}
	if d.PoweredOff() {
		t.Fatal("CrashImage cut the power")
	}
	if !bytes.Equal(read(t, img, 0, 4096), flushed) {
		t.Fatal("flushed block missing from the image")
	}
	if len(outs) != 6 {
		t.Fatalf("%d outcomes, want 6", len(outs))
	}
	// The device still takes writes and flushes; the image taken before does not change.
	before := read(t, img, 0, 1<<20)
	write(t, d, block(99, 4096), 0)
	if err := d.Flush(); err != nil {
		t.Fatalf("flush after CrashImage: %v", err)
	}
	if !bytes.Equal(read(t, img, 0, 1<<20), before) {
		t.Fatal("the image changed after later writes")
	}
	_, outs2, err := d.CrashReport(rand.New(rand.NewPCG(7, 7)))
	if err != nil {
		t.Fatal(err)
	}
	if len(outs2) != 0 {
		t.Fatalf("%d writes pending after the flush, want 0", len(outs2))
	}
}

// TestCrashImagesOneInstant: a writer makes block n durable on device a, then records n on device
// b and flushes it, over and over (data, then the record that maps it, on two devices). Images of
// both devices taken at one instant never hold a durable record whose data the other image lacks.
func TestCrashImagesOneInstant(t *testing.T) {
	a, b := newDev(t, faultdev.Options{}), newDev(t, faultdev.Options{})
	const rounds = 2000
	done := make(chan error, 1)
	go func() {
		for n := uint64(1); n <= rounds; n++ {
			off := int64(n%1000) * 4096
			if _, err := a.WriteAt(block(n, 4096), off); err != nil {
				done <- err
				return
			}
			if err := a.Flush(); err != nil {
				done <- err
				return
			}
			rec := blockdev.AlignedBuffer(4096)
			binary.LittleEndian.PutUint64(rec, n)
			if _, err := b.WriteAt(rec, 0); err != nil {
				done <- err
				return
			}
			if err := b.Flush(); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	rng := rand.New(rand.NewPCG(3, 3))
	checked := 0
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			running = false
		default:
		}
		imgs, _, err := faultdev.CrashImages(rng, a, b)
		if err != nil {
			t.Fatal(err)
		}
		n := binary.LittleEndian.Uint64(read(t, imgs[1], 0, 4096))
		if n == 0 {
			continue
		}
		if got := read(t, imgs[0], int64(n%1000)*4096, 4096); !bytes.Equal(got, block(n, 4096)) {
			t.Fatalf("the record of block %d is durable on b, and a's image taken at the same instant lacks the block", n)
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no image pair held a record")
	}
	t.Logf("%d image pairs checked", checked)
	if _, _, err := faultdev.CrashImages(rng, a, a); err == nil {
		t.Fatal("CrashImages took the same device twice")
	}
}
