package replica_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cobaltstore/cobalt/node-daemon/replica"
)

const (
	volID       = "pvc-replicated"
	volSize     = 32 << 20
	blockSize   = 4096
	writers     = 8
	slotsPerW   = volSize / blockSize / writers
	storeSize   = 256 << 20
	stripeBytes = 1 << 20
)

// writeStream is a continuous verified write stream: writers goroutines each own a slice of the
// volume's 4 KiB blocks and write blocks of a content unique to (writer, sequence, offset) at
// random offsets of their slice, remembering the last acknowledged content of every block.
type writeStream struct {
	mu   sync.Mutex
	cond *sync.Cond
	// acked is the last acknowledged content of each written block, total the acknowledgements,
	// err the first failure.
	acked map[int64][]byte
	total int64
	err   error
	// failed are the blocks of failed writes; lateAcks counts writes acknowledged although they
	// started after takenOver was set.
	failed    map[int64]bool
	lateAcks  int
	takenOver atomic.Bool
}

func newWriteStream() *writeStream {
	s := &writeStream{acked: make(map[int64][]byte), failed: make(map[int64]bool)}
	s.cond = sync.NewCond(&s.mu)
	return s
}

func block(w, seq int, off int64) []byte {
	b := make([]byte, blockSize)
	binary.LittleEndian.PutUint64(b, uint64(w))
	binary.LittleEndian.PutUint64(b[8:], uint64(seq))
	binary.LittleEndian.PutUint64(b[16:], uint64(off))
	for i := 24; i < blockSize; i++ {
		b[i] = byte(w*31 + seq*7 + i)
	}
	return b
}

// run writes through co until stop is closed or a write fails, which it records.
func (s *writeStream) run(ctx context.Context, co *replica.Coordinator, stop <-chan struct{}) {
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				off := int64(w*slotsPerW+rng.IntN(slotsPerW)) * blockSize
				data := block(w, seq, off)
				late := s.takenOver.Load()
				err := co.Write(ctx, off, data)
				s.mu.Lock()
				if err != nil {
					s.failed[off] = true
					if s.err == nil {
						s.err = fmt.Errorf("writer %d: write at %d: %w", w, off, err)
					}
				} else {
					s.acked[off] = data
					s.total++
					if late {
						s.lateAcks++
					}
				}
				s.cond.Broadcast()
				s.mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
}

// waitFor waits until n writes were acknowledged in all, or one failed.
func (s *writeStream) waitFor(n int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.total < n && s.err == nil {
		s.cond.Wait()
	}
	return s.err
}

func (s *writeStream) count() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// verify checks that every acknowledged block reads back with its last acknowledged content from
// each listed node's replica (its own store, not through the coordinator).
func (s *writeStream) verify(t *testing.T, nodes ...*node) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range nodes {
		bad := 0
		for off, want := range s.acked {
			got, err := n.vols.Read(context.Background(), volID, off, blockSize)
			if err != nil || !bytes.Equal(got, want) {
				bad++
			}
		}
		if bad > 0 {
			t.Errorf("%s: %d of %d acknowledged blocks do not read back", n.name, bad, len(s.acked))
		}
	}
}

// volumeImage reads the whole volume of node n.
func volumeImage(t *testing.T, n *node) []byte {
	t.Helper()
	img, err := n.vols.Read(context.Background(), volID, 0, volSize)
	if err != nil {
		t.Fatalf("read volume of %s: %v", n.name, err)
	}
	return img
}

// TestReplicaLossAndFencing runs a continuous verified write stream through a coordinator on
// node-a with replicas on node-a (local), node-b and node-c (remote, over mTLS). node-c's server
// is stopped mid-stream: writes go on, node-c is dropped and recorded, its dirty regions logged,
// and every acknowledged write reads back from node-a and node-b. Then a coordinator of the next
// generation on node-b takes over: the old coordinator's I/O is refused, nothing it tries lands,
// and the two in-sync replicas stay identical.
func TestReplicaLossAndFencing(t *testing.T) {
	c := newCluster(t, 3, storeSize)
	a, b, cn := c.nodes[0], c.nodes[1], c.nodes[2]
	c.createVolume(t, volID, volSize, stripeBytes)
	ctx := context.Background()
	rec := &recorder{}
	co, err := c.coordinate(t, volID, 1, rec, a, b, cn)
	if err != nil {
		t.Fatalf("open coordinator: %v", err)
	}
	for _, n := range c.nodes {
		if g, err := n.srv.Replicas().Generation(ctx, n.storeUUID, volID); err != nil || g != 1 {
			t.Fatalf("%s: recorded generation %d, %v; want 1 once claimed", n.name, g, err)
		}
	}

	s := newWriteStream()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); s.run(ctx, co, stop) }()
	if err := s.waitFor(400); err != nil {
		t.Fatal(err)
	}
	cn.stop() // node-c dies mid-stream
	atStop := s.count()
	if err := s.waitFor(atStop + 400); err != nil {
		close(stop)
		<-done
		t.Fatalf("writes did not continue without node-c: %v", err)
	}
	close(stop)
	<-done
	if s.err != nil {
		t.Fatal(s.err)
	}
	t.Logf("%d writes acknowledged, %d of them after node-c stopped", s.count(), s.count()-atStop)

	if got := co.InSync(); !slices.Equal(got, []string{a.name, b.name}) {
		t.Fatalf("in sync = %v, want node-a and node-b", got)
	}
	if drops := rec.drops(); len(drops) != 1 || drops[cn.name] == "" {
		t.Fatalf("recorded drops = %v, want node-c alone", drops)
	} else {
		t.Logf("node-c dropped: %s", drops[cn.name])
	}
	dirty := co.Dirty().Bytes(cn.name)
	if dirty == 0 || co.Dirty().Bytes(a.name) != 0 || co.Dirty().Bytes(b.name) != 0 {
		t.Fatalf("dirty bytes: node-c %d, node-a %d, node-b %d", dirty, co.Dirty().Bytes(a.name), co.Dirty().Bytes(b.name))
	}
	t.Logf("node-c dirty: %d bytes in %d extents", dirty, len(co.Dirty().Extents(cn.name)))
	s.verify(t, a, b)
	for off, want := range s.acked {
		if got, err := co.Read(ctx, off, blockSize); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("coordinator read at %d: %v", off, err)
		}
		break
	}

	// Take over from node-b with generation 2 (node-c is out of the in-sync set).
	rec2 := &recorder{}
	co2, err := c.coordinate(t, volID, 2, rec2, b, a)
	if err != nil {
		t.Fatalf("open the generation 2 coordinator: %v", err)
	}
	for _, n := range []*node{a, b} {
		if g, err := n.srv.Replicas().Generation(ctx, n.storeUUID, volID); err != nil || g != 2 {
			t.Fatalf("%s: recorded generation %d, %v; want 2", n.name, g, err)
		}
	}
	// The old coordinator resumes: every operation is refused, nothing lands, nobody is dropped.
	var victim int64
	for off := range s.acked {
		victim = off
		break
	}
	before := s.acked[victim]
	err = co.Write(ctx, victim, bytes.Repeat([]byte{0xee}, blockSize))
	if !errors.Is(err, replica.ErrFenced) {
		t.Fatalf("old coordinator's write = %v, want ErrFenced", err)
	}
	t.Logf("old coordinator refused: %v", err)
	if _, err := co.Read(ctx, victim, blockSize); !errors.Is(err, replica.ErrFenced) {
		t.Fatalf("old coordinator's read = %v, want ErrFenced", err)
	}
	if err := co.Flush(ctx); !errors.Is(err, replica.ErrFenced) {
		t.Fatalf("old coordinator's flush = %v, want ErrFenced", err)
	}
	if len(rec.drops()) != 1 {
		t.Fatalf("the fenced coordinator recorded drops: %v", rec.drops())
	}
	for _, n := range []*node{a, b} {
		if got, _ := n.vols.Read(ctx, volID, victim, blockSize); !bytes.Equal(got, before) {
			t.Fatalf("%s: the fenced write landed", n.name)
		}
	}
	// The new coordinator serves a verified stream of its own.
	stop2 := make(chan struct{})
	done2 := make(chan struct{})
	go func() { defer close(done2); s.run(ctx, co2, stop2) }()
	err = s.waitFor(s.count() + 300)
	close(stop2)
	<-done2
	if err != nil {
		t.Fatal(err)
	}
	if err := co2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	s.verify(t, a, b)
	if len(rec2.drops()) != 0 || !slices.Equal(co2.InSync(), []string{b.name, a.name}) {
		t.Fatalf("generation 2: drops %v, in sync %v", rec2.drops(), co2.InSync())
	}
	if !bytes.Equal(volumeImage(t, a), volumeImage(t, b)) {
		t.Fatal("the in-sync replicas diverged")
	}
}

// TestTakeoverDuringWrites opens a coordinator of generation 2 on node-b while the generation 1
// coordinator on node-a is writing. Writes of generation 1 that start after the takeover returned
// are never acknowledged, every acknowledged write not overwritten by a failed one is on both
// replicas, and the replicas differ at most in blocks of writes that failed (a failed write
// leaves its range undefined; making the replicas agree there is the resync's job).
func TestTakeoverDuringWrites(t *testing.T) {
	c := newCluster(t, 2, storeSize)
	a, b := c.nodes[0], c.nodes[1]
	c.createVolume(t, volID, volSize, stripeBytes)
	ctx := context.Background()
	old, err := c.coordinate(t, volID, 1, &recorder{}, a, b)
	if err != nil {
		t.Fatal(err)
	}
	s := newWriteStream()
	done := make(chan struct{})
	go func() { defer close(done); s.run(ctx, old, make(chan struct{})) }()
	if err := s.waitFor(300); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	if _, err := c.coordinate(t, volID, 2, rec, b, a); err != nil {
		t.Fatalf("takeover: %v", err)
	}
	s.takenOver.Store(true)
	<-done // every writer stops at its first failure
	if !errors.Is(s.err, replica.ErrFenced) {
		t.Fatalf("old coordinator's writes ended with %v, want ErrFenced", s.err)
	}
	if s.lateAcks != 0 {
		t.Fatalf("%d writes of the old generation started after the takeover and were acknowledged", s.lateAcks)
	}
	if len(rec.drops()) != 0 {
		t.Fatalf("takeover dropped replicas: %v", rec.drops())
	}
	imgA, imgB := volumeImage(t, a), volumeImage(t, b)
	differ := 0
	for off := int64(0); off < volSize; off += blockSize {
		same := bytes.Equal(imgA[off:off+blockSize], imgB[off:off+blockSize])
		if !same {
			differ++
			if !s.failed[off] {
				t.Errorf("replicas differ at %d, where no write failed", off)
			}
		}
		if want, ok := s.acked[off]; ok && !s.failed[off] && (!same || !bytes.Equal(imgA[off:off+blockSize], want)) {
			t.Errorf("acknowledged block %d lost", off)
		}
	}
	t.Logf("%d writes acknowledged, %d failed at the takeover, %d blocks differ between the replicas", s.total, len(s.failed), differ)
}
