package replvol

import (
	"context"
	"fmt"
	"slices"

	"github.com/cobaltstore/cobalt/node-daemon/replica"
)

// reconcile makes the in-sync copies equal before the volume serves any I/O. A coordinator that
// lost the attachment (a takeover at a newer generation) or that died (a restart of this node,
// at the same generation) may have had writes in flight that reached some in-sync copies only:
// they were never acknowledged, so either content is allowed, but the copies must agree on it or
// a read would return either version depending on the copy that serves it. Nothing durable tells
// a clean Close from a crash, so every Open reconciles: it scrubs every in-sync copy over every
// extent any of them holds (a deep read, replica.Coordinator.Scrub, under the region locks),
// repairs each differing block from its good copy (planRepairs with the in-sync set as authority:
// a strict majority when there is one, else the first in-sync copy, the local one first, that
// read the block), compares the repaired blocks again, and records the run like a scrub
// (ConditionScrubbed, counters). It is not throttled: the volume is unavailable until it ends.
// Its cost is a read of every written byte of every in-sync copy (each on its own node, only
// checksums cross the network) plus the repaired bytes. Blocks no copy can read stay as they are
// (every copy fails them alike). The reconcile fails (and so Open) when the copies could not be
// compared, a repair failed or repaired blocks still differ.
func (b *backend) reconcile(ctx context.Context) error {
	inSync := b.co.InSync()
	if len(inSync) < 2 {
		return nil
	}
	r := b.scrub(ctx, "reconcile at open", replica.SyncOptions{}, inSync)
	if ctx.Err() != nil {
		return fmt.Errorf("replvol: open %s: reconciling the in-sync copies %v: %w", b.ref.key, inSync, ctx.Err())
	}
	b.recordScrub(ctx, r)
	b.v.opts.Log.Info("in-sync copies reconciled at open", "volume", b.ref.key, "generation", b.ref.gen, "copies", r.replicas,
		"compared", r.compared, "mismatches", len(r.found), "repaired", r.repaired, "unreadableEverywhere", len(r.undecided), "took", r.took.String())
	if r.err != nil {
		return fmt.Errorf("replvol: open %s: reconciling the in-sync copies %v: %w", b.ref.key, r.replicas, ioErr(r.err))
	}
	if len(r.remaining) > 0 {
		return fmt.Errorf("replvol: open %s: reconciling the in-sync copies %v: %s still differ after the repair (%s); the open is retried",
			b.ref.key, r.replicas, blocks(len(r.remaining)), listBlocks(r.remaining))
	}
	return nil
}

// byAuthority decides a block without a majority: the good copy is the first in order that
// read it; the bad ones are those that read something else or could not read it. ok is false
// when no copy in order read the block.
func byAuthority(m replica.Mismatch, order []string) (good string, bad []string, ok bool) {
	i := slices.IndexFunc(order, func(name string) bool { _, read := m.Checksums[name]; return read })
	if i < 0 {
		return "", nil, false
	}
	good = order[i]
	for name, sum := range m.Checksums {
		if name != good && sum != m.Checksums[good] {
			bad = append(bad, name)
		}
	}
	for name := range m.Unreadable {
		bad = append(bad, name)
	}
	slices.Sort(bad)
	return good, bad, true
}
