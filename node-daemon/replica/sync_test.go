package replica_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cobaltstore/cobalt/node-daemon/client"
	"github.com/cobaltstore/cobalt/node-daemon/objstore"
	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
	"github.com/cobaltstore/cobalt/node-daemon/replica"
	"github.com/cobaltstore/cobalt/node-daemon/volume"
)

const region = replica.DefaultRegionSize

// remote opens a Replicate stream from a coordinator to the replica of volume id on node to,
// named after the node; it is closed at test cleanup.
func (c *cluster) remote(t testing.TB, to *node, id string) *replica.Remote {
	t.Helper()
	cl, err := client.Dial(to.addr, c.clientTLS(t, "coordinator"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	r, err := replica.OpenRemote(context.Background(), cl.Replicas, to.name, &nodepb.VolumeRef{StoreUuid: to.storeUUID, VolumeId: id})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// openWith opens a coordinator of generation 1 on node local with the given remote replicas.
func openWith(t testing.TB, rec replica.InSyncRecorder, local *node, id string, remotes ...replica.Replica) *replica.Coordinator {
	t.Helper()
	co, err := replica.Open(context.Background(), replica.Config{
		Generation:     1,
		Local:          replica.NewLocal(local.srv.Replicas(), local.name, local.storeUUID, id),
		Remotes:        remotes,
		Recorder:       rec,
		ReplicaTimeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return co
}

// sameImages fails the test unless every node's copy of the volume reads the same.
func sameImages(t *testing.T, nodes ...*node) {
	t.Helper()
	first := volumeImage(t, nodes[0])
	for _, n := range nodes[1:] {
		if img := volumeImage(t, n); !bytes.Equal(img, first) {
			i := 0
			for i < len(img) && img[i] == first[i] {
				i++
			}
			t.Errorf("%s and %s differ, first at byte %d", nodes[0].name, n.name, i)
		}
	}
}

// streamingLimiter is a Limiter that, before granting each chunk, waits for the write stream to
// acknowledge more writes, so copy and writes interleave at every chunk whatever the scheduling.
type streamingLimiter struct {
	s     *writeStream
	calls atomic.Int64
}

func (l *streamingLimiter) WaitN(_ context.Context, _ int) error {
	l.calls.Add(1)
	return l.s.waitFor(l.s.count() + 3)
}

// progressLog keeps every Progress report.
type progressLog struct {
	mu  sync.Mutex
	all []replica.Progress
}

func (p *progressLog) add(pr replica.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.all = append(p.all, pr)
}

// last returns the last report of phase.
func (p *progressLog) last(phase replica.Phase) (replica.Progress, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.all) - 1; i >= 0; i-- {
		if p.all[i].Phase == phase {
			return p.all[i], true
		}
	}
	return replica.Progress{}, false
}

// TestRebuildUnderVerifiedWrites rebuilds node-c from node-b while a continuous verified write
// stream runs through the coordinator on node-a, with writes acknowledged between every chunk
// copied. Afterwards node-c is in sync, every acknowledged write reads back from all three
// copies, and the three copies are identical; progress was reported up to the bytes copied.
func TestRebuildUnderVerifiedWrites(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, 3, storeSize)
	a, b, cn := c.nodes[0], c.nodes[1], c.nodes[2]
	c.createVolume(t, volID, volSize, stripeBytes)
	rec := &recorder{}
	co, err := c.coordinate(t, volID, 1, rec, a, b)
	if err != nil {
		t.Fatal(err)
	}
	s := newWriteStream()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.run(ctx, co, stop)
	}()
	if err := s.waitFor(500); err != nil {
		t.Fatal(err)
	}
	lim := &streamingLimiter{s: s}
	var prog progressLog
	before := s.count()
	res, err := co.Rebuild(ctx, b.name, c.remote(t, cn, volID), replica.SyncOptions{Limiter: lim, Progress: prog.add})
	during := s.count() - before
	if err != nil {
		close(stop)
		<-done
		t.Fatalf("rebuild: %v", err)
	}
	if err := s.waitFor(s.count() + 300); err != nil { // writes go on, now to three replicas
		t.Fatal(err)
	}
	close(stop)
	<-done
	if s.err != nil {
		t.Fatalf("write stream: %v", s.err)
	}
	if got, want := co.InSync(), []string{a.name, b.name, cn.name}; !slices.Equal(got, want) {
		t.Fatalf("in sync after rebuild = %v, want %v", got, want)
	}
	if d := rec.drops(); len(d) != 0 {
		t.Fatalf("replicas dropped: %v", d)
	}
	if during < lim.calls.Load() {
		t.Fatalf("only %d writes were acknowledged during the rebuild's %d chunks", during, lim.calls.Load())
	}
	if res.Copied <= 0 || res.Copied > volSize || res.Compared < res.Copied-res.Skipped {
		t.Fatalf("result %+v: copied must be in (0, %d], compared at least the non-zero bytes copied", res, volSize)
	}
	if p, ok := prog.last(replica.PhaseCopy); !ok || p.Done != res.Copied || p.Total != res.Copied {
		t.Fatalf("last copy progress %+v (reported %v), want %d of %d", p, ok, res.Copied, res.Copied)
	}
	if p, ok := prog.last(replica.PhaseInSync); !ok || p.Done != res.Compared {
		t.Fatalf("in-sync progress %+v (reported %v), want %d compared", p, ok, res.Compared)
	}
	s.verify(t, a, b, cn)
	sameImages(t, a, b, cn)
	t.Logf("rebuild under writes: %+v, %d writes acknowledged during it, %d chunks", res, during, lim.calls.Load())
}

// TestRebuildCopiesOnlyWrittenExtents rebuilds a thin volume with three written ranges: only the
// stripe objects that exist are copied, up to their size, and a stripe of zeros is trimmed on the
// target instead of written (it never becomes an object there).
func TestRebuildCopiesOnlyWrittenExtents(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, 3, storeSize)
	a, b, cn := c.nodes[0], c.nodes[1], c.nodes[2]
	c.createVolume(t, volID, volSize, stripeBytes)
	co, err := c.coordinate(t, volID, 1, &recorder{}, a, b)
	if err != nil {
		t.Fatal(err)
	}
	writes := []struct {
		off  int64
		data []byte
	}{
		{0, bytes.Repeat([]byte{1}, 4096)},                    // stripe 0: 4 KiB
		{5*stripeBytes + 4096, bytes.Repeat([]byte{2}, 8192)}, // stripe 5: 12 KiB from its start
		{10 * stripeBytes, make([]byte, 64<<10)},              // stripe 10: 64 KiB of zeros
	}
	for _, w := range writes {
		if err := co.Write(ctx, w.off, w.data); err != nil {
			t.Fatal(err)
		}
	}
	res, err := co.Rebuild(ctx, a.name, c.remote(t, cn, volID), replica.SyncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := replica.SyncResult{Copied: 4096 + 12288 + 65536, Skipped: 65536, Compared: 4096 + 12288 + 65536}
	if res != want {
		t.Fatalf("rebuild result = %+v, want %+v", res, want)
	}
	if _, err := cn.vols.Store().Stat(ctx, volume.CollectionName(volID), volume.StripeName(10)); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("the all-zero stripe was written on the target: stat = %v", err)
	}
	sameImages(t, a, b, cn)
}

// TestRebuildOntoAStaleReplica rebuilds onto a replica that holds old data, some of it where the
// source has never written: that is trimmed away, and the copies compare equal.
func TestRebuildOntoAStaleReplica(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, 3, storeSize)
	a, b, cn := c.nodes[0], c.nodes[1], c.nodes[2]
	c.createVolume(t, volID, volSize, stripeBytes)
	co, err := c.coordinate(t, volID, 1, &recorder{}, a, b)
	if err != nil {
		t.Fatal(err)
	}
	if err := co.Write(ctx, 2*stripeBytes, bytes.Repeat([]byte{4}, 8192)); err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{2 * stripeBytes, 9*stripeBytes + 12345} { // old data, one in a hole of the source
		if err := cn.vols.Write(ctx, volID, off, bytes.Repeat([]byte{0xee}, 20000)); err != nil {
			t.Fatal(err)
		}
	}
	res, err := co.Rebuild(ctx, a.name, c.remote(t, cn, volID), replica.SyncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Skipped != 12345+20000 {
		t.Fatalf("rebuild %+v: want the %d stale bytes in the source's hole trimmed", res, 12345+20000)
	}
	sameImages(t, a, b, cn)
}

// failing is a replica whose writes fail while down is set, as a node that went away.
type failing struct {
	replica.Syncer
	down atomic.Bool
}

func (f *failing) Write(ctx context.Context, gen uint64, off int64, data []byte) error {
	if f.down.Load() {
		return errors.New("injected: node unreachable")
	}
	return f.Syncer.Write(ctx, gen, off, data)
}

func (f *failing) Flush(ctx context.Context, gen uint64) error {
	if f.down.Load() {
		return errors.New("injected: node unreachable")
	}
	return f.Syncer.Flush(ctx, gen)
}

// TestResyncOfUnreachableCopyFails: a copy dropped at a flush has no dirty region, so its resync
// has nothing to copy; while it cannot be reached the resync must still fail, not put it in sync.
func TestResyncOfUnreachableCopyFails(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, 2, storeSize)
	a, b := c.nodes[0], c.nodes[1]
	c.createVolume(t, volID, volSize, stripeBytes)
	rec := &recorder{}
	fb := &failing{Syncer: c.remote(t, b, volID)}
	co := openWith(t, rec, a, volID, fb)
	fb.down.Store(true)
	if err := co.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, dropped := rec.drops()[b.name]; !dropped || co.Dirty().Bytes(b.name) != 0 {
		t.Fatalf("node-b dropped: %v, dirty bytes %d; want dropped with none", dropped, co.Dirty().Bytes(b.name))
	}
	if _, err := co.Resync(ctx, a.name, fb, replica.SyncOptions{}); err == nil {
		t.Fatal("resync of a copy that cannot be reached succeeded")
	}
	if got := co.InSync(); !slices.Equal(got, []string{a.name}) {
		t.Fatalf("in sync after the failed resync = %v, want only %s", got, a.name)
	}
	fb.down.Store(false)
	if _, err := co.Resync(ctx, a.name, fb, replica.SyncOptions{}); err != nil {
		t.Fatalf("resync once the copy is back: %v", err)
	}
	if got := co.InSync(); !slices.Equal(got, []string{a.name, b.name}) {
		t.Fatalf("in sync after the resync = %v", got)
	}
}

// TestResyncCopiesOnlyDirtyRegions drops node-b while writes touch four 1 MiB regions, then
// resyncs it over a new stream: exactly those regions are copied and compared, node-b is in sync
// again with an empty dirty log, and the copies are identical.
func TestResyncCopiesOnlyDirtyRegions(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, 2, storeSize)
	a, b := c.nodes[0], c.nodes[1]
	c.createVolume(t, volID, volSize, stripeBytes)
	rec := &recorder{}
	fb := &failing{Syncer: c.remote(t, b, volID)}
	co := openWith(t, rec, a, volID, fb)
	if err := co.Write(ctx, 0, bytes.Repeat([]byte{7}, 8<<20)); err != nil {
		t.Fatal(err)
	}
	fb.down.Store(true)
	for _, w := range []struct{ off, n int64 }{
		{4096, 4096},             // region 0
		{5 * region, 4096},       // region 5
		{5*region + 8192, 65536}, // region 5 again
		{20*region - 4096, 8192}, // regions 19 and 20
	} {
		if err := co.Write(ctx, w.off, bytes.Repeat([]byte{9}, int(w.n))); err != nil {
			t.Fatal(err)
		}
	}
	if _, dropped := rec.drops()[b.name]; !dropped {
		t.Fatal("node-b was not dropped")
	}
	const dirty = 4 * region
	if got := co.Dirty().Bytes(b.name); got != dirty {
		t.Fatalf("dirty bytes of node-b = %d, want %d", got, dirty)
	}
	var prog progressLog
	res, err := co.Resync(ctx, a.name, c.remote(t, b, volID), replica.SyncOptions{Progress: prog.add})
	if err != nil {
		t.Fatal(err)
	}
	if res.Copied != dirty || res.Compared != dirty {
		t.Fatalf("resync result = %+v, want %d bytes copied and compared", res, dirty)
	}
	if p, ok := prog.last(replica.PhaseCopy); !ok || p.Done != dirty || p.Total != dirty {
		t.Fatalf("copy progress = %+v (%v), want %d of %d", p, ok, dirty, dirty)
	}
	if got := co.InSync(); !slices.Equal(got, []string{a.name, b.name}) {
		t.Fatalf("in sync after resync = %v", got)
	}
	if got := co.Dirty().Bytes(b.name); got != 0 {
		t.Fatalf("dirty bytes after resync = %d", got)
	}
	sameImages(t, a, b)
	// node-b takes writes again as an in-sync replica.
	if err := co.Write(ctx, 30*region, []byte("after resync")); err != nil {
		t.Fatal(err)
	}
	sameImages(t, a, b)
}

// TestScrubDetectsAndRepairsCorruption injects a corruption on one copy behind the coordinator's
// back; Scrub reports exactly the damaged block with both checksums, Repair from the good copy
// fixes it, and a second Scrub finds nothing.
func TestScrubDetectsAndRepairsCorruption(t *testing.T) {
	const block = 64 << 10
	cases := []struct {
		name    string
		bad     int // index of the damaged node
		off     int64
		data    []byte
		wantOff int64
		wantLen int64 // a block, or less where the written extents end
		nodes   int   // 3: the good copy is found by majority
	}{
		{"flipped byte in a written block of the remote copy", 1, 3*region + 100, []byte{0xff}, 3 * region, block, 2},
		{"data in a hole of the remote copy", 1, 30*region + block + 5, []byte("rot"), 30*region + block, 8, 2},
		{"flipped byte in the last block of the local copy", 0, 2*region - 1, []byte{0xee}, 2*region - block, block, 2},
		{"one of three copies rotted, repaired from the majority", 2, 1*region + 4096, []byte{0x42}, region, block, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			c := newCluster(t, tc.nodes, storeSize)
			nodes := c.nodes
			c.createVolume(t, volID, volSize, stripeBytes)
			co, err := c.coordinate(t, volID, 1, &recorder{}, nodes[0], nodes[1:]...)
			if err != nil {
				t.Fatal(err)
			}
			if err := co.Write(ctx, 0, bytes.Repeat([]byte{3}, 4*region)); err != nil {
				t.Fatal(err)
			}
			if res, err := co.Scrub(ctx, replica.SyncOptions{}); err != nil || len(res.Mismatches) != 0 || res.Compared != 4*region {
				t.Fatalf("scrub of equal copies = %+v, %v", res, err)
			}
			if err := nodes[tc.bad].vols.Write(ctx, volID, tc.off, tc.data); err != nil {
				t.Fatal(err)
			}
			res, err := co.Scrub(ctx, replica.SyncOptions{CompareBlock: block})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Mismatches) != 1 {
				t.Fatalf("mismatches = %+v, want one", res.Mismatches)
			}
			m := res.Mismatches[0]
			if m.Offset != tc.wantOff || m.Length != tc.wantLen {
				t.Fatalf("mismatch at [%d, +%d), want [%d, +%d)", m.Offset, m.Length, tc.wantOff, tc.wantLen)
			}
			good := nodes[(tc.bad+1)%len(nodes)].name
			if len(m.Checksums) != len(nodes) || m.Checksums[nodes[tc.bad].name] == m.Checksums[good] {
				t.Fatalf("mismatch checksums = %v", m.Checksums)
			}
			if maj, bad, ok := m.Majority(); ok != (len(nodes) == 3) || ok && (maj != nodes[0].name || !slices.Equal(bad, []string{nodes[tc.bad].name})) {
				t.Fatalf("Majority = %q, %v, %v", maj, bad, ok)
			}
			n, err := co.Repair(ctx, good, []string{nodes[tc.bad].name}, []replica.Extent{m.Extent}, replica.SyncOptions{})
			if err != nil || n != tc.wantLen {
				t.Fatalf("repair = %d, %v; want %d bytes", n, err, tc.wantLen)
			}
			if res, err := co.Scrub(ctx, replica.SyncOptions{}); err != nil || len(res.Mismatches) != 0 {
				t.Fatalf("scrub after repair = %+v, %v", res.Mismatches, err)
			}
			sameImages(t, nodes...)
		})
	}
}

// countingLimiter grants everything and records every request; it has a burst, so the copy
// must ask for at most that much at once.
type countingLimiter struct {
	burst int
	mu    sync.Mutex
	asks  []int
}

func (l *countingLimiter) WaitN(_ context.Context, n int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.asks = append(l.asks, n)
	return nil
}

func (l *countingLimiter) Burst() int { return l.burst }

var errBudget = errors.New("test limiter: budget exhausted")

// budgetLimiter grants budget bytes, then refuses.
type budgetLimiter struct {
	mu     sync.Mutex
	budget int64
}

func (l *budgetLimiter) WaitN(_ context.Context, n int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if int64(n) > l.budget {
		return errBudget
	}
	l.budget -= int64(n)
	return nil
}

// TestSyncThrottle checks that every byte a rebuild copies and compares goes through the
// limiter, in requests no larger than its burst, and that a limiter that stops granting stops
// the rebuild where it is: the target stays out of sync and a later rebuild completes.
func TestSyncThrottle(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, 3, storeSize)
	a, b, cn := c.nodes[0], c.nodes[1], c.nodes[2]
	c.createVolume(t, volID, volSize, stripeBytes)
	co, err := c.coordinate(t, volID, 1, &recorder{}, a, b)
	if err != nil {
		t.Fatal(err)
	}
	if err := co.Write(ctx, 0, bytes.Repeat([]byte{5}, 6*region)); err != nil {
		t.Fatal(err)
	}

	budget := &budgetLimiter{budget: 4 * region} // two regions, each copied and compared
	var prog progressLog
	_, err = co.Rebuild(ctx, a.name, c.remote(t, cn, volID), replica.SyncOptions{Limiter: budget, Parallelism: 1, CopyRegions: 1, Progress: prog.add})
	if !errors.Is(err, errBudget) {
		t.Fatalf("rebuild with an exhausted limiter = %v, want the limiter's error", err)
	}
	if p, _ := prog.last(replica.PhaseCopy); p.Done != 2*region || p.Total != 6*region {
		t.Fatalf("copy progress when the limiter stopped = %+v, want %d of %d", p, 2*region, 6*region)
	}
	if slices.Contains(co.InSync(), cn.name) {
		t.Fatal("a rebuild that did not finish put the target in sync")
	}

	lim := &countingLimiter{burst: 256 << 10}
	res, err := co.Rebuild(ctx, a.name, c.remote(t, cn, volID), replica.SyncOptions{Limiter: lim})
	if err != nil {
		t.Fatal(err)
	}
	var asked int64
	for _, n := range lim.asks {
		if n > lim.burst {
			t.Fatalf("asked the limiter for %d bytes at once, above its burst %d", n, lim.burst)
		}
		asked += int64(n)
	}
	if want := res.Copied + res.Compared; asked != want || res.Copied != 6*region {
		t.Fatalf("limiter asked for %d bytes, want copied+compared = %d (result %+v)", asked, want, res)
	}
	sameImages(t, a, b, cn)
}

// TestSyncRefusals: a rebuild or resync that cannot be right is refused before anything moves.
func TestSyncRefusals(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, 3, storeSize)
	a, b, cn := c.nodes[0], c.nodes[1], c.nodes[2]
	c.createVolume(t, volID, volSize, stripeBytes)
	co, err := c.coordinate(t, volID, 1, &recorder{}, a, b)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		run  func() error
	}{
		{"rebuild from a replica that is not a member", func() error {
			_, err := co.Rebuild(ctx, "node-x", c.remote(t, cn, volID), replica.SyncOptions{})
			return err
		}},
		{"rebuild onto a replica that is in sync", func() error {
			_, err := co.Rebuild(ctx, a.name, c.remote(t, b, volID), replica.SyncOptions{})
			return err
		}},
		{"resync of a replica that was never a member", func() error {
			_, err := co.Resync(ctx, a.name, c.remote(t, cn, volID), replica.SyncOptions{})
			return err
		}},
		{"compare block above the region size", func() error {
			_, err := co.Rebuild(ctx, a.name, c.remote(t, cn, volID), replica.SyncOptions{CompareBlock: 2 * region})
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(); err == nil {
				t.Fatal("accepted")
			}
			if got := co.InSync(); !slices.Equal(got, []string{a.name, b.name}) {
				t.Fatalf("in sync = %v", got)
			}
		})
	}
}

// TestResyncUnderVerifiedWrites drops node-c in the middle of a continuous verified write stream
// (its writes fail), lets writes dirty the log, then resyncs node-c over a new stream while the
// writes go on, acknowledged between every chunk. Only dirty regions are copied (at least those
// logged before the resync started, at most the volume), node-c is in sync again with an empty
// dirty log, every acknowledged write reads back from all three copies, and they are identical.
func TestResyncUnderVerifiedWrites(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, 3, storeSize)
	a, b, cn := c.nodes[0], c.nodes[1], c.nodes[2]
	c.createVolume(t, volID, volSize, stripeBytes)
	rec := &recorder{}
	fc := &failing{Syncer: c.remote(t, cn, volID)}
	co := openWith(t, rec, a, volID, c.remote(t, b, volID), fc)
	s := newWriteStream()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.run(ctx, co, stop)
	}()
	finish := func() {
		close(stop)
		<-done
	}
	if err := s.waitFor(300); err != nil {
		finish()
		t.Fatal(err)
	}
	fc.down.Store(true)
	// A few writes while node-c is away: they dirty at most a few of the volume's 32 regions.
	if err := s.waitFor(s.count() + 10); err != nil {
		finish()
		t.Fatal(err)
	}
	if _, dropped := rec.drops()[cn.name]; !dropped {
		finish()
		t.Fatal("node-c was not dropped")
	}
	back := c.remote(t, cn, volID) // node-c returns: a new stream
	dirtyBefore := co.Dirty().Bytes(cn.name)
	lim := &streamingLimiter{s: s}
	res, err := co.Resync(ctx, a.name, back, replica.SyncOptions{Limiter: lim})
	if err != nil {
		finish()
		t.Fatalf("resync: %v", err)
	}
	if err := s.waitFor(s.count() + 300); err != nil {
		finish()
		t.Fatal(err)
	}
	finish()
	if s.err != nil {
		t.Fatalf("write stream: %v", s.err)
	}
	if res.Copied < dirtyBefore || res.Copied >= volSize || res.Compared != res.Copied {
		t.Fatalf("resync result %+v: want at least the %d dirty bytes logged before it, less than the volume, all compared", res, dirtyBefore)
	}
	if got := co.InSync(); !slices.Equal(got, []string{a.name, b.name, cn.name}) {
		t.Fatalf("in sync after resync = %v", got)
	}
	if got := co.Dirty().Bytes(cn.name); got != 0 {
		t.Fatalf("dirty bytes after resync = %d", got)
	}
	s.verify(t, a, b, cn)
	sameImages(t, a, b, cn)
	t.Logf("resync under writes: %+v (%d dirty bytes before it), %d chunks", res, dirtyBefore, lim.calls.Load())
}

// TestResyncOfReplacedCopyFails: node-b's copy is deleted and created again under the
// coordinator (a copy retired and a new one placed on the same Store). The coordinator's writes
// meant for the old copy are refused there, so it drops node-b instead of writing the new, empty
// copy as if in sync; a resync, which would copy only the dirty regions, is refused
// (ErrReplaced); a rebuild after Remove brings node-b back with every byte.
func TestResyncOfReplacedCopyFails(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, 2, storeSize)
	a, b := c.nodes[0], c.nodes[1]
	c.createVolume(t, volID, volSize, stripeBytes)
	rec := &recorder{}
	rb := c.remote(t, b, volID)
	co := openWith(t, rec, a, volID, rb)
	if err := co.Write(ctx, 0, bytes.Repeat([]byte{7}, 8<<20)); err != nil {
		t.Fatal(err)
	}
	was := rb.Incarnation()
	if was == "" {
		t.Fatal("the stream to node-b is bound to no incarnation after the coordinator's claim")
	}
	if err := b.srv.Replicas().Delete(ctx, b.storeUUID, volID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.vols.Create(ctx, volID, volSize, stripeBytes); err != nil {
		t.Fatal(err)
	}
	var replaced *replica.ReplacedError
	if _, err := rb.Read(ctx, 1, 0, 4096); !errors.As(err, &replaced) || replaced.Expected != was || replaced.Found == was {
		t.Fatalf("read over the stream bound to the old copy: %v, want a ReplacedError from %s", err, was)
	}
	if err := co.Write(ctx, 4096, bytes.Repeat([]byte{9}, 4096)); err != nil {
		t.Fatal(err)
	}
	if reason, dropped := rec.drops()[b.name]; !dropped || !strings.Contains(reason, "deleted and created again") {
		t.Fatalf("node-b dropped: %v (%q); want dropped for being another copy", dropped, reason)
	}
	if got := co.InSync(); !slices.Equal(got, []string{a.name}) {
		t.Fatalf("in sync = %v, want only %s", got, a.name)
	}
	_, err := co.Resync(ctx, a.name, c.remote(t, b, volID), replica.SyncOptions{})
	if !errors.Is(err, replica.ErrReplaced) {
		t.Fatalf("resync of the new copy: %v, want ErrReplaced", err)
	}
	if got := co.InSync(); !slices.Equal(got, []string{a.name}) {
		t.Fatalf("in sync after the refused resync = %v, want only %s", got, a.name)
	}
	if !co.Remove(b.name) {
		t.Fatal("node-b was not a member")
	}
	res, err := co.Rebuild(ctx, a.name, c.remote(t, b, volID), replica.SyncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Copied != 8<<20 {
		t.Fatalf("rebuild copied %d bytes, want %d", res.Copied, 8<<20)
	}
	if got := co.InSync(); !slices.Equal(got, []string{a.name, b.name}) {
		t.Fatalf("in sync after the rebuild = %v", got)
	}
	sameImages(t, a, b)
}
