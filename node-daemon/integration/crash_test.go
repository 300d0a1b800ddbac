package integration

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	nodeclient "github.com/cobaltstore/cobalt/node-daemon/client"
	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
)

const (
	crashBlock   = 4096
	crashWriters = 8
	crashLane    = 4 << 20 // bytes of the volume each writer owns
)

// crashKills is the number of kill -9 rounds: 3 in `make test`, more with COBALT_CRASH_KILLS
// (`make node-crash-soak`).
func crashKills(t *testing.T) int {
	if v := os.Getenv("COBALT_CRASH_KILLS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("COBALT_CRASH_KILLS=%q is not a positive number", v)
		}
		return n
	}
	return 3
}

// laneWriter writes random runs of blocks into its own lane of the volume and remembers what was
// acknowledged, and what was in flight when the daemon died.
type laneWriter struct {
	id       int
	acked    map[int64][]byte // block index in the lane -> content acknowledged last
	inflight map[int64][]byte // the write in flight when the connection broke (may or may not be applied)
	nAcked   int
}

func (w *laneWriter) run(ctx context.Context, c *nodeclient.Client, ref *nodepb.VolumeRef, round int, rng *rand.Rand) error {
	blocks := int64(crashLane / crashBlock)
	for seq := 0; ; seq++ {
		n := rng.Int64N(16) + 1
		first := rng.Int64N(blocks - n + 1)
		data := make([]byte, n*crashBlock)
		for b := range n {
			block := data[b*crashBlock : (b+1)*crashBlock]
			binary.LittleEndian.PutUint64(block, uint64(round)<<48|uint64(w.id)<<40|uint64(seq))
			for i := 8; i < len(block); i++ {
				block[i] = byte(rng.Uint32())
			}
		}
		off := int64(w.id)*crashLane + first*crashBlock
		_, err := c.Volumes.Write(ctx, &nodepb.WriteRequest{Ref: ref, Offset: off, Data: data})
		if err != nil {
			w.inflight = map[int64][]byte{}
			for b := range n {
				w.inflight[first+b] = data[b*crashBlock : (b+1)*crashBlock]
			}
			return err
		}
		for b := range n {
			w.acked[first+b] = data[b*crashBlock : (b+1)*crashBlock]
		}
		w.nAcked++
	}
}

// verify reads the lane and checks every block: an acknowledged block holds exactly its last
// acknowledged content, or the content of the write that was in flight at the crash; a block
// never acknowledged holds zeros or that in-flight content.
func (w *laneWriter) verify(ctx context.Context, c *nodeclient.Client, ref *nodepb.VolumeRef) error {
	var buf bytes.Buffer
	if _, err := c.ReadTo(ctx, ref, int64(w.id)*crashLane, crashLane, &buf); err != nil {
		return err
	}
	got := buf.Bytes()
	zero := make([]byte, crashBlock)
	for b := int64(0); b < crashLane/crashBlock; b++ {
		block := got[b*crashBlock : (b+1)*crashBlock]
		want, ok := w.acked[b]
		if !ok {
			want = zero
		}
		if bytes.Equal(block, want) {
			continue
		}
		if in, ok := w.inflight[b]; ok && bytes.Equal(block, in) {
			w.acked[b] = in // the in-flight write landed: it is the new content
			continue
		}
		return errors.New("writer " + string(rune('0'+w.id)) + ": block lost or torn")
	}
	w.inflight = nil
	return nil
}

// TestKill9DuringWritesLosesNoAcknowledgedWrite runs the daemon as a process, writes to a volume
// from several clients, kills the daemon with SIGKILL mid-stream, restarts it and verifies every
// acknowledged write, several times; at the end a clean shutdown and a deep fsck.
func TestKill9DuringWritesLosesNoAcknowledgedWrite(t *testing.T) {
	c := newCluster(t)
	dev := newDevice(t, 256<<20, 0, nil)
	cfg := c.daemonConfig(t, "node-k", dev)
	ctx := context.Background()
	p := startProc(t, cfg)
	st := servingStore(t, "node-k", dev, "")
	ref := &nodepb.VolumeRef{StoreUuid: st.Status.UUID, VolumeId: "crash"}
	cl := c.client(t, st.Annotations["storage.cobalt.io/node-endpoint"])
	if _, err := cl.Volumes.CreateVolume(ctx, &nodepb.CreateVolumeRequest{Ref: ref, SizeBytes: crashWriters * crashLane}); err != nil {
		t.Fatal(err)
	}
	writers := make([]*laneWriter, crashWriters)
	for i := range writers {
		writers[i] = &laneWriter{id: i, acked: map[int64][]byte{}}
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 42))
	endpoint := st.Annotations["storage.cobalt.io/node-endpoint"]
	totalAcked, totalInflight := 0, 0
	kills := crashKills(t)
	for round := range kills {
		var wg sync.WaitGroup
		errs := make([]error, crashWriters)
		for i, w := range writers {
			wg.Add(1)
			seed := rng.Uint64()
			go func() {
				defer wg.Done()
				errs[i] = w.run(ctx, cl, ref, round, rand.New(rand.NewPCG(seed, uint64(i))))
			}()
		}
		time.Sleep(time.Duration(300+rng.IntN(900)) * time.Millisecond) // let writes flow, then crash
		p.kill(t)
		wg.Wait()
		for i, err := range errs {
			if code := status.Code(err); code != codes.Unavailable && code != codes.Canceled && code != codes.Internal {
				t.Fatalf("writer %d failed with %v before the kill", i, err)
			}
			if writers[i].inflight != nil {
				totalInflight++
			}
		}
		p = startProc(t, cfg)
		st = servingStore(t, "node-k", dev, endpoint)
		endpoint = st.Annotations["storage.cobalt.io/node-endpoint"]
		cl = c.client(t, endpoint)
		for _, w := range writers {
			if err := w.verify(ctx, cl, ref); err != nil {
				t.Fatalf("after kill %d: %v", round+1, err)
			}
		}
	}
	for _, w := range writers {
		totalAcked += w.nAcked
	}
	if totalAcked < kills*crashWriters {
		t.Fatalf("only %d writes were acknowledged: the test did not exercise the daemon", totalAcked)
	}
	if took, err := p.terminate(t, 30*time.Second); err != nil {
		t.Fatalf("final SIGTERM: %v after %s", err, took)
	}
	fsckDevice(t, dev)
	t.Logf("kill -9: %d kills, %d acknowledged writes verified, %d writes in flight at the kills, fsck clean",
		kills, totalAcked, totalInflight)
}
