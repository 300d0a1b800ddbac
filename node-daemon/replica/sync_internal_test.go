package replica

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
)

// syncFake is a fakeReplica that is also a Syncer; readHook runs after each read took its data
// and before the read returns.
type syncFake struct {
	*fakeReplica
	readHook func()
}

func (f *syncFake) Read(ctx context.Context, gen uint64, off, length int64) ([]byte, error) {
	data, err := f.fakeReplica.Read(ctx, gen, off, length)
	if f.readHook != nil {
		f.readHook()
	}
	return data, err
}

func (f *syncFake) Extents(_ context.Context, gen uint64) ([]Extent, int64, error) {
	if err := f.check(gen); err != nil {
		return nil, 0, err
	}
	n := int64(len(f.data)) // fixed at creation
	return []Extent{{0, n}}, n, nil
}

func (f *syncFake) Checksum(_ context.Context, gen uint64, off, length, block int64) ([]uint32, error) {
	if err := f.check(gen); err != nil {
		return nil, err
	}
	data := f.bytes(int(off), int(length))
	var out []uint32
	for p := int64(0); p < length; p += block {
		out = append(out, crc32.Checksum(data[p:min(p+block, length)], crc32.MakeTable(crc32.Castagnoli)))
	}
	return out, nil
}

// TestCopyNeverOverwritesALaterWrite checks the copy invariant directly: a write to a region
// issued while that region's chunk is between its read from the source and its write to the
// target must not reach the replicas until the chunk is written (it waits for the region lock;
// a chunk of several regions holds the lock of each), so the copy cannot overwrite it with the
// older data it read; the write then lands on both and the rebuild ends with equal copies.
func TestCopyNeverOverwritesALaterWrite(t *testing.T) {
	for _, tc := range []struct {
		name        string
		copyRegions int
		at          int64
	}{
		{"one-region chunks, first region", 1, 10},
		{"one chunk of four regions, first region", 4, 10},
		{"one chunk of four regions, last region", 4, 3*4096 + 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testCopyNeverOverwritesALaterWrite(t, tc.copyRegions, tc.at)
		})
	}
}

func testCopyNeverOverwritesALaterWrite(t *testing.T, copyRegions int, at int64) {
	ctx := context.Background()
	const size = 4 * 4096
	src := &syncFake{fakeReplica: newFake("a", size, nil)}
	dst := &syncFake{fakeReplica: newFake("t", size, nil)}
	co, err := Open(ctx, Config{Generation: 1, Local: src, Recorder: &fakeRecorder{}, RegionSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if err := co.Write(ctx, 0, bytes.Repeat([]byte{1}, size)); err != nil {
		t.Fatal(err)
	}
	newer := bytes.Repeat([]byte{2}, 100)
	writeDone := make(chan error, 1)
	var overtook bool
	src.readHook = func() {
		if src.readHook == nil {
			return
		}
		src.readHook = nil // only the first chunk; the hook runs in the copy's one worker
		go func() { writeDone <- co.Write(ctx, at, newer) }()
		// The write must wait for this chunk: it may not complete while the chunk is held.
		select {
		case err := <-writeDone:
			overtook = true
			writeDone <- err
		case <-time.After(200 * time.Millisecond):
		}
	}
	res, err := co.Rebuild(ctx, "a", dst, SyncOptions{Parallelism: 1, CopyRegions: copyRegions})
	if overtook {
		t.Fatal("a write to the region being copied completed between the copy's read and its write")
	}
	if err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	if err := <-writeDone; err != nil {
		t.Fatalf("the concurrent write failed: %v", err)
	}
	if got := dst.bytes(int(at), len(newer)); !bytes.Equal(got, newer) {
		t.Fatalf("target lost the later write: %v", got[:4])
	}
	if !bytes.Equal(dst.bytes(0, size), src.bytes(0, size)) || res.Copied != size {
		t.Fatalf("copies differ or copied %d bytes, want %d", res.Copied, size)
	}
	if got := co.InSync(); len(got) != 2 || got[1] != "t" {
		t.Fatalf("in sync after rebuild = %v", got)
	}
}

// TestCatchingUpFailureDropsNobody: a write that fails on the replica being rebuilt is still
// acknowledged (the target does not count), nobody is recorded as dropped, the range is dirty for
// the target, and the rebuild fails, leaving the target out of sync.
func TestCatchingUpFailureDropsNobody(t *testing.T) {
	ctx := context.Background()
	const size = 4 * 4096
	src := &syncFake{fakeReplica: newFake("a", size, nil)}
	dst := &syncFake{fakeReplica: newFake("t", size, nil)}
	rec := &fakeRecorder{}
	co, err := Open(ctx, Config{Generation: 1, Local: src, Recorder: rec, RegionSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if err := co.Write(ctx, 0, bytes.Repeat([]byte{1}, size)); err != nil {
		t.Fatal(err)
	}
	var writeErr error
	src.readHook = func() {
		if src.readHook == nil {
			return
		}
		src.readHook = nil
		dst.writeHook = func(context.Context) error { return errDisk }
		writeErr = co.Write(ctx, 3*4096, []byte{9}) // another region than the one being copied
	}
	if _, err := co.Rebuild(ctx, "a", dst, SyncOptions{Parallelism: 1, CopyRegions: 1}); !errors.Is(err, errDisk) {
		t.Fatalf("rebuild = %v, want the target's failure", err)
	}
	if writeErr != nil {
		t.Fatalf("the write that failed only on the catching-up target = %v, want acknowledged", writeErr)
	}
	if rec.calls != 0 {
		t.Fatalf("recorder called %d times", rec.calls)
	}
	if got := co.InSync(); len(got) != 1 || got[0] != "a" {
		t.Fatalf("in sync = %v", got)
	}
	if got := co.Dirty().Extents("t"); len(got) != 1 || got[0] != (Extent{3 * 4096, 4096}) {
		t.Fatalf("dirty regions of the target = %v", got)
	}
}

// TestRebuildOntoANewerGenerationFences: a target that has accepted a newer generation refuses
// the rebuild, which fences the coordinator like any refusal.
func TestRebuildOntoANewerGenerationFences(t *testing.T) {
	ctx := context.Background()
	src := &syncFake{fakeReplica: newFake("a", 4096, nil)}
	dst := &syncFake{fakeReplica: newFake("t", 4096, nil)}
	dst.stale = 2
	co, err := Open(ctx, Config{Generation: 1, Local: src, Recorder: &fakeRecorder{}, RegionSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := co.Rebuild(ctx, "a", dst, SyncOptions{}); !errors.Is(err, ErrFenced) {
		t.Fatalf("rebuild = %v, want ErrFenced", err)
	}
	if err := co.Write(ctx, 0, []byte{1}); !errors.Is(err, ErrFenced) {
		t.Fatalf("write after the refusal = %v, want ErrFenced", err)
	}
}

// badTarget is a syncFake that stores other bytes than it is given at flip (one byte inverted),
// or whose checksums of the block at rot fail as corrupt, as a damaged device would.
type badTarget struct {
	*syncFake
	flip, rot int64 // -1: none
}

func (f *badTarget) Write(ctx context.Context, gen uint64, off int64, data []byte) error {
	if off <= f.flip && f.flip < off+int64(len(data)) {
		data = append([]byte(nil), data...)
		data[f.flip-off] ^= 0xff
	}
	return f.syncFake.Write(ctx, gen, off, data)
}

func (f *badTarget) Checksum(ctx context.Context, gen uint64, off, length, block int64) ([]uint32, error) {
	if f.rot >= 0 && off <= f.rot && f.rot < off+length {
		return nil, fmt.Errorf("block at %d: %w", f.rot, objstore.ErrCorrupt)
	}
	return f.syncFake.Checksum(ctx, gen, off, length, block)
}

// verifyingTarget is a badTarget that is also a WriteVerifier, as a node is: WriteVerify writes,
// then reads the range back and compares it; a range with a block it finds corrupt (rot) is not
// compared (Verified false), nor is any when old is set (a node too old to compare). It counts
// the checksum requests it answers.
type verifyingTarget struct {
	*badTarget
	old                 bool
	verifies, checksums int
}

func (f *verifyingTarget) WriteVerify(ctx context.Context, gen uint64, off int64, data []byte, block int64) (Verified, error) {
	if err := f.Write(ctx, gen, off, data); err != nil {
		return Verified{}, err
	}
	f.mu.Lock()
	f.verifies++
	f.mu.Unlock()
	if f.old {
		return Verified{Why: "too old"}, nil
	}
	if f.rot >= 0 && off <= f.rot && f.rot < off+int64(len(data)) {
		return Verified{Why: "corrupt"}, nil
	}
	return Verified{Verified: true, Differ: differingBlocks(data, f.bytes(int(off), len(data)), block)}, nil
}

func (f *verifyingTarget) Checksum(ctx context.Context, gen uint64, off, length, block int64) ([]uint32, error) {
	f.mu.Lock()
	f.checksums++
	f.mu.Unlock()
	return f.badTarget.Checksum(ctx, gen, off, length, block)
}

// TestRebuildComparesWhatTheTargetStored: the comparison of each chunk right after its copy uses
// what the target stored, read back on its node (its checksums, or its write's own comparison
// when it is a WriteVerifier), so a target that stored other bytes, or cannot read them back,
// fails the rebuild with ErrCopiesDiffer naming the block, and stays out of sync. A WriteVerifier
// that compared its writes answers no checksum request; one that could not compare one (a
// corrupt block, a node too old to) is compared by checksums.
func TestRebuildComparesWhatTheTargetStored(t *testing.T) {
	const size, block = 4 * 4096, 4096
	for _, tc := range []struct {
		name      string
		flip, rot int64
		wantAt    int64
		verifier  bool // the target is a WriteVerifier
		old       bool // that never compares
		checksums bool // the comparison needs checksum requests
	}{
		{"stores other bytes", 2*4096 + 100, -1, 2 * 4096, false, false, true},
		{"finds its copy corrupt", -1, 4096, 4096, false, false, true},
		{"stores other bytes, compared by its write", 2*4096 + 100, -1, 2 * 4096, true, false, false},
		{"finds its copy corrupt when it reads its write back", -1, 4096, 4096, true, false, true},
		{"stores other bytes, too old to compare its write", 2*4096 + 100, -1, 2 * 4096, true, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			src := &syncFake{fakeReplica: newFake("a", size, nil)}
			bad := &badTarget{syncFake: &syncFake{fakeReplica: newFake("t", size, nil)}, flip: tc.flip, rot: tc.rot}
			vt := &verifyingTarget{badTarget: bad, old: tc.old}
			var dst Syncer = bad
			if tc.verifier {
				dst = vt
			}
			co, err := Open(ctx, Config{Generation: 1, Local: src, Recorder: &fakeRecorder{}, RegionSize: 4096})
			if err != nil {
				t.Fatal(err)
			}
			if err := co.Write(ctx, 0, bytes.Repeat([]byte{3}, size)); err != nil {
				t.Fatal(err)
			}
			res, err := co.Rebuild(ctx, "a", dst, SyncOptions{CompareBlock: block})
			if !errors.Is(err, ErrCopiesDiffer) || !strings.Contains(err.Error(), fmt.Sprintf("1 blocks, the first at %d", tc.wantAt)) {
				t.Fatalf("rebuild = %v, want ErrCopiesDiffer for the block at %d", err, tc.wantAt)
			}
			if res.Copied != size || res.Compared != size {
				t.Fatalf("result %+v, want %d copied and compared", res, size)
			}
			if got := co.InSync(); len(got) != 1 || got[0] != "a" {
				t.Fatalf("in sync = %v, want the source only", got)
			}
			if tc.verifier {
				if vt.verifies == 0 {
					t.Fatal("the copy wrote no chunk with WriteVerify")
				}
				if got := vt.checksums > 0; got != tc.checksums {
					t.Fatalf("checksum requests: %d, want some: %v", vt.checksums, tc.checksums)
				}
			}
		})
	}
}

// TestDifferingBlocks: the blocks that differ, by index from the start, with the checksum of what
// was read back; the last block may be short.
func TestDifferingBlocks(t *testing.T) {
	want := bytes.Repeat([]byte{5}, 3*4096+100)
	if got := differingBlocks(want, bytes.Clone(want), 4096); got != nil {
		t.Fatalf("equal ranges: %v, want none", got)
	}
	got := bytes.Clone(want)
	got[4096+7] ^= 1
	got[3*4096+99] ^= 1
	crc := func(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }
	wantDiffer := []DifferingBlock{{Index: 1, Checksum: crc(got[4096 : 2*4096])}, {Index: 3, Checksum: crc(got[3*4096:])}}
	if d := differingBlocks(want, got, 4096); !slices.Equal(d, wantDiffer) {
		t.Fatalf("differing blocks = %v, want %v", d, wantDiffer)
	}
}

// TestRebuildComparesRegionsTheSourceMissed: a write made after a region was copied and compared
// that lands on the target but fails on the source (so the region is dirty for the source) leaves
// the copies different there; the comparison after the copy covers the source's dirty regions and
// fails the rebuild.
func TestRebuildComparesRegionsTheSourceMissed(t *testing.T) {
	ctx := context.Background()
	const size = 4 * 4096
	src := &syncFake{fakeReplica: newFake("a", size, nil)}
	dst := &syncFake{fakeReplica: newFake("t", size, nil)}
	co, err := Open(ctx, Config{Generation: 1, Local: src, Recorder: &fakeRecorder{}, RegionSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if err := co.Write(ctx, 0, bytes.Repeat([]byte{1}, size)); err != nil {
		t.Fatal(err)
	}
	var writeErr error
	reads := 0
	src.readHook = func() {
		// The copy's one worker reads chunk 1 (region 0 is copied and compared, its lock free).
		if reads++; reads != 2 {
			return
		}
		src.writeHook = func(context.Context) error { return errDisk }
		writeErr = co.Write(ctx, 100, []byte{7})
		src.writeHook = nil
	}
	_, err = co.Rebuild(ctx, "a", dst, SyncOptions{Parallelism: 1, CopyRegions: 1, CompareBlock: 4096})
	if !errors.Is(writeErr, errDisk) {
		t.Fatalf("the write that failed on the only in-sync replica = %v, want its failure", writeErr)
	}
	if !errors.Is(err, ErrCopiesDiffer) || !strings.Contains(err.Error(), "the first at 0") {
		t.Fatalf("rebuild = %v, want ErrCopiesDiffer at 0", err)
	}
	if got := co.InSync(); len(got) != 1 {
		t.Fatalf("in sync = %v, want the source only", got)
	}
}

func TestExtentSets(t *testing.T) {
	e := func(pairs ...int64) []Extent {
		var out []Extent
		for i := 0; i < len(pairs); i += 2 {
			out = append(out, Extent{Offset: pairs[i], Length: pairs[i+1]})
		}
		return out
	}
	for _, tc := range []struct {
		name             string
		a, b             []Extent
		minus, intersect []Extent
	}{
		{"empty b", e(0, 10, 20, 5), nil, e(0, 10, 20, 5), nil},
		{"empty a", nil, e(0, 10), nil, nil},
		{"equal", e(0, 10), e(0, 10), nil, e(0, 10)},
		{"b inside a", e(0, 100), e(10, 10, 50, 10), e(0, 10, 20, 30, 60, 40), e(10, 10, 50, 10)},
		{"a inside b", e(10, 10, 50, 10), e(0, 100), nil, e(10, 10, 50, 10)},
		{"overlapping ends", e(0, 10, 20, 10), e(5, 20), e(0, 5, 25, 5), e(5, 5, 20, 5)},
		{"touching, disjoint", e(0, 10), e(10, 10), e(0, 10), nil},
		{"b spans two of a", e(0, 10, 20, 10, 40, 10), e(5, 30), e(0, 5, 40, 10), e(5, 5, 20, 10)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := subtractExtents(tc.a, tc.b); !slices.Equal(got, tc.minus) {
				t.Errorf("a - b = %v, want %v", got, tc.minus)
			}
			if got := intersectExtents(tc.a, tc.b); !slices.Equal(got, tc.intersect) {
				t.Errorf("a ∩ b = %v, want %v", got, tc.intersect)
			}
		})
	}
}

func TestZeroRuns(t *testing.T) {
	const region = 8
	data := func(pattern string) []byte { // one character per byte: 0 zero, x not
		b := make([]byte, len(pattern))
		for i, c := range pattern {
			if c == 'x' {
				b[i] = 1
			}
		}
		return b
	}
	for _, tc := range []struct {
		name string
		off  int64
		data string
		want []run
	}{
		{"one region written", 0, "000x0000", []run{{Extent{0, 8}, false}}},
		{"zero regions merged", 0, "00000000" + "00000000" + "x0000000", []run{{Extent{0, 16}, true}, {Extent{16, 8}, false}}},
		{"written regions merged", 0, "0000000x" + "x0000000" + "00000000", []run{{Extent{0, 16}, false}, {Extent{16, 8}, true}}},
		{"unaligned start and end", 5, "000" + "0000x000" + "00", []run{{Extent{0, 3}, true}, {Extent{3, 8}, false}, {Extent{11, 2}, true}}},
		{"all zeros", 3, "00000" + "0000", []run{{Extent{0, 9}, true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := zeroRuns(tc.off, data(tc.data), region); !slices.Equal(got, tc.want) {
				t.Fatalf("zeroRuns = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestAllZero: one non-zero byte anywhere, the first and the last included, makes a range not
// all zeros.
func TestAllZero(t *testing.T) {
	for _, n := range []int{0, 1, 2, 7, 4096, 4099} {
		b := make([]byte, n)
		if !allZero(b) {
			t.Fatalf("%d zeros: not all zeros", n)
		}
		for i := range n {
			b[i] = 0x80
			if allZero(b) {
				t.Fatalf("%d bytes with byte %d set: all zeros", n, i)
			}
			b[i] = 0
		}
	}
}

// BenchmarkAllZero checks a chunk of zeros, as the copy does before it trims one.
func BenchmarkAllZero(b *testing.B) {
	buf := make([]byte, 4<<20)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if !allZero(buf) {
			b.Fatal("a chunk of zeros is not all zeros")
		}
	}
}
