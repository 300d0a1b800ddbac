package integration

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/cobaltstore/cobalt/node-daemon/csinode"
)

const (
	streamBlock   = 4096
	streamWriters = 4
	streamLane    = replVolumeSize / streamWriters // bytes of the volume each writer owns
	// streamFlushEvery is how many writes a writer issues between two flushes.
	streamFlushEvery = 16
)

// model is what the volume must hold: per block, the content of its last acknowledged write, or
// zeros; and for the blocks of writes that failed, the contents those writes may have left (a
// failed write leaves its range undefined: the old content or the new one).
type model struct {
	mu    sync.Mutex
	acked map[int64][]byte   // block index -> content acknowledged last
	maybe map[int64][][]byte // block index -> contents of failed writes since its last acknowledgement
}

func newModel() *model {
	return &model{acked: map[int64][]byte{}, maybe: map[int64][][]byte{}}
}

func (m *model) ack(first int64, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for b := int64(0); b < int64(len(data))/streamBlock; b++ {
		m.acked[first+b] = data[b*streamBlock : (b+1)*streamBlock]
		delete(m.maybe, first+b)
	}
}

func (m *model) failed(first int64, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for b := int64(0); b < int64(len(data))/streamBlock; b++ {
		m.maybe[first+b] = append(m.maybe[first+b], data[b*streamBlock:(b+1)*streamBlock])
	}
}

// verify checks the whole volume's contents against the model and returns how many blocks hold
// the content of a failed write (it landed) rather than their last acknowledged content.
func (m *model) verify(data []byte) (landed int, err error) {
	lost, landed := m.lostBlocks(data)
	if len(lost) == 0 {
		return landed, nil
	}
	b := lost[0]
	m.mu.Lock()
	want := m.acked[b]
	m.mu.Unlock()
	if want == nil {
		want = make([]byte, streamBlock)
	}
	return landed, fmt.Errorf("block %d (offset %d) lost: it holds %s, the last acknowledged write was %s (%d blocks lost)",
		b, b*streamBlock, blockTag(data[b*streamBlock:(b+1)*streamBlock]), blockTag(want), len(lost))
}

// lostBlocks returns the blocks of data (the whole volume) that hold neither their last
// acknowledged content (zeros if never written) nor that of a write of unknown outcome since, and
// how many hold the latter.
func (m *model) lostBlocks(data []byte) (lost []int64, landed int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	zero := make([]byte, streamBlock)
	for b := int64(0); b < replVolumeSize/streamBlock; b++ {
		got := data[b*streamBlock : (b+1)*streamBlock]
		want, ok := m.acked[b]
		if !ok {
			want = zero
		}
		if bytes.Equal(got, want) {
			continue
		}
		found := false
		for _, c := range m.maybe[b] {
			found = found || bytes.Equal(got, c)
		}
		if !found {
			lost = append(lost, b)
			continue
		}
		landed++
	}
	return lost, landed
}

// differences describes up to limit blocks in which copies a and b differ: each one's content
// and what the model knows of the block ("" when they are equal).
func (m *model) differences(a, b []byte, limit int) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	n := 0
	for blk := int64(0); blk < int64(len(a))/streamBlock; blk++ {
		x, y := a[blk*streamBlock:(blk+1)*streamBlock], b[blk*streamBlock:(blk+1)*streamBlock]
		if bytes.Equal(x, y) {
			continue
		}
		n++
		if len(out) < limit {
			known := "never written"
			if c, ok := m.acked[blk]; ok {
				known = "acknowledged " + blockTag(c)
			}
			if len(m.maybe[blk]) > 0 {
				known += fmt.Sprintf(", then %d failed write(s), the last %s", len(m.maybe[blk]), blockTag(m.maybe[blk][len(m.maybe[blk])-1]))
			}
			out = append(out, fmt.Sprintf("block %d (offset %d): %s vs %s (%s)", blk, blk*streamBlock, blockTag(x), blockTag(y), known))
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d blocks differ: %s", n, strings.Join(out, "; "))
}

// blockTag names a block's content by its header (writer, sequence) for failure messages.
func blockTag(b []byte) string {
	if bytes.Equal(b, make([]byte, len(b))) {
		return "zeros"
	}
	h := binary.LittleEndian.Uint64(b)
	return fmt.Sprintf("writer %d write %d (tag %#x)", h>>40&0xff, h&0xffffffffff, h>>48)
}

// streamResult is what one run of a write stream did.
type streamResult struct {
	acked, failed, flushes int
	errs                   []error // the errors of the failed writes and flushes, in order
}

// stream is a continuous verified write stream: streamWriters writers, each writing random runs of
// blocks into its own lane of the volume through a coordinator's backend and flushing every
// streamFlushEvery writes, recording every acknowledged write in the model.
type stream struct {
	m      *model
	tag    uint64 // distinguishes the contents of one run from another's
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	res    streamResult
}

// streamOptions configures a write stream.
type streamOptions struct {
	// tag marks the contents this stream writes (distinct per stream of a test).
	tag uint64
	// seed seeds the writers' random offsets, lengths and contents.
	seed uint64
	// stopOnError stops a writer at its first failed write or flush; otherwise it keeps writing.
	stopOnError bool
	// span is how many bytes at the start of its lane each writer writes (0: the whole lane).
	span int64
}

// startStream starts writing through be; stop ends it.
func startStream(be csinode.ReplicatedBackend, m *model, o streamOptions) *stream {
	ctx, cancel := context.WithCancel(context.Background())
	s := &stream{m: m, tag: o.tag, cancel: cancel}
	if o.span <= 0 || o.span > streamLane {
		o.span = streamLane
	}
	for w := range streamWriters {
		s.wg.Add(1)
		rng := rand.New(rand.NewPCG(o.seed, uint64(w)))
		go func() {
			defer s.wg.Done()
			s.write(ctx, be, w, rng, o)
		}()
	}
	return s
}

func (s *stream) write(ctx context.Context, be csinode.ReplicatedBackend, w int, rng *rand.Rand, o streamOptions) {
	blocks := o.span / streamBlock
	for seq := uint64(1); ctx.Err() == nil; seq++ {
		n := rng.Int64N(min(16, blocks)) + 1
		first := int64(w)*(streamLane/streamBlock) + rng.Int64N(blocks-n+1)
		data := make([]byte, n*streamBlock)
		for b := range n {
			block := data[b*streamBlock : (b+1)*streamBlock]
			binary.LittleEndian.PutUint64(block, s.tag<<48|uint64(w)<<40|seq)
			for i := 8; i < len(block); i++ {
				block[i] = byte(rng.Uint32())
			}
		}
		// The stream's own context is not passed down: a write is never abandoned half way by
		// the test (the coordinator bounds it by its replica timeout).
		err := be.WriteAt(context.Background(), data, first*streamBlock)
		if err == nil && seq%streamFlushEvery == 0 {
			if err = be.Flush(context.Background()); err == nil {
				s.count(func(r *streamResult) { r.flushes++ })
			}
		}
		if err != nil {
			s.m.failed(first, data)
			s.count(func(r *streamResult) { r.failed++; r.errs = append(r.errs, err) })
			if o.stopOnError {
				return
			}
			select { // do not spin on a volume that refuses everything
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		s.m.ack(first, data)
		s.count(func(r *streamResult) { r.acked++ })
	}
}

func (s *stream) count(f func(*streamResult)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.res)
}

// result returns what the stream did so far.
func (s *stream) result() streamResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.res
	r.errs = append([]error(nil), s.res.errs...)
	return r
}

// stop ends the stream, waits for its writers and returns what it did.
func (s *stream) stop() streamResult {
	s.cancel()
	s.wg.Wait()
	return s.result()
}
