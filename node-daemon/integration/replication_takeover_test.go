package integration

import (
	"context"
	"errors"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/onsi/gomega"

	"github.com/cobaltstore/cobalt/node-daemon/csinode"
)

// TestReplicationTakeoverDuringWritesLeavesNoDivergence: the attachment moves from node to node
// (round robin over the copies' nodes, replTakeovers times) while the coordinator of the moment is
// writing, so its writes are in flight when the next one claims the copies: some copies may have
// applied one before the claim, others refuse it after. Each round, every acknowledged write reads
// back through the new coordinator, every write of the old one that was not acknowledged failed
// as fenced, and the three copies compare equal to each other: a write in flight at a takeover
// may have landed or not, but the same on every copy (else a later read could see it appear or
// vanish as the copy it is served from changes).
func TestReplicationTakeoverDuringWritesLeavesNoDivergence(t *testing.T) {
	rounds := replTakeovers(t)
	rc := newReplCluster(t, 10*time.Minute)
	vol := rc.createVolume(t, "inflight", 3)
	var nodes []string
	for _, c := range vol.Status.Replicas {
		nodes = append(nodes, c.Node)
	}
	cur := nodes[0]
	gen := rc.publish(t, vol.Name, cur)
	first := rc.open(t, rc.coordinator(t, cur, 500*time.Millisecond), vol, gen)
	t.Cleanup(func() { _ = first.Close(context.Background()) })
	be := first

	m := newModel()
	seed := uint64(time.Now().UnixNano())
	acked, refused := 0, 0
	for round := range rounds {
		old := startStream(be, m, streamOptions{tag: uint64(round + 1), seed: seed + uint64(round), stopOnError: true})
		waitAcked(t, old, 100)
		next := nodes[(round+1)%len(nodes)]
		newGen := rc.takeOver(t, vol.Name, cur, next, gen)
		newBE := rc.open(t, rc.coordinator(t, next, 500*time.Millisecond), vol, newGen)
		t.Cleanup(func() { _ = newBE.Close(context.Background()) })
		gomega.NewWithT(t).Eventually(func() int { return old.result().failed }, time.Minute, 10*time.Millisecond).Should(gomega.Equal(streamWriters),
			"every writer of the old coordinator stops at a refusal")
		oldRes := old.stop()
		for _, err := range oldRes.errs {
			if !errors.Is(err, csinode.ErrFenced) {
				t.Fatalf("takeover %d: the old coordinator's write failed with %v, want csinode.ErrFenced", round+1, err)
			}
		}
		if err := be.Close(context.Background()); !errors.Is(err, csinode.ErrFenced) {
			t.Fatalf("takeover %d: closing the old coordinator: %v, want its last flush refused as fenced", round+1, err)
		}
		if err := newBE.Flush(context.Background()); err != nil {
			t.Fatalf("takeover %d: flush: %v", round+1, err)
		}
		verifyThroughCoordinator(t, newBE, m)
		t.Logf("takeover %d: from %s (generation %d) to %s (generation %d) with %d writes in flight; comparing the copies", round+1, cur, gen, next, newGen, oldRes.failed)
		if copies, _ := rc.compareCopies(t, vol.Name, m); copies != 3 {
			t.Fatalf("takeover %d: compared %d copies, want 3 (%s)", round+1, copies, replicaSummary(rc.volume(t, vol.Name)))
		}
		acked, refused = acked+oldRes.acked, refused+oldRes.failed
		be, cur, gen = newBE, next, newGen
	}
	final := rc.volume(t, vol.Name)
	copies, landed := rc.compareCopies(t, vol.Name, m)
	t.Logf("fault takeover during writes: count %d, acknowledged writes verified %d, in flight and refused as fenced %d "+
		"(%d blocks of unknown outcome, %d of them landed, the same on every copy), lost 0, copies compared equal %d (%s)",
		rounds, acked, refused, len(m.maybe), landed, copies, replicaSummary(final))
}

// replTakeovers is the number of takeover rounds: 5 in `make test`, more with
// COBALT_REPL_TAKEOVERS.
func replTakeovers(t *testing.T) int {
	if v := os.Getenv("COBALT_REPL_TAKEOVERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("COBALT_REPL_TAKEOVERS=%q is not a positive number", v)
		}
		return n
	}
	return 5
}
