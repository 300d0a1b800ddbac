package replvol

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/cobaltstore/cobalt/node-daemon/replica"
)

// reconcile makes the in-sync copies equal before the volume serves any I/O. A coordinator that
// lost the attachment (a takeover at a newer generation) or that died (a restart of this node,
// at the same generation) may have had writes in flight that reached some in-sync copies only:
// they were never acknowledged, so either content is allowed, but the copies must agree on it or
// a read would return either version depending on the copy that serves it. Every copy marks a
// region in its write-intent log before it applies a write there, and marks are cleared only
// once every in-sync copy has every write of the region (package replica, "Write intent"), so
// such writes lie in the union of the in-sync copies' intent regions (replica.Coordinator.
// IntentExtents). The reconcile compares only those regions; when a copy keeps no log (written by
// older code, a corrupt log) or cannot report it, it compares every extent any copy holds, as a
// scrub does. Either way (a deep read under the region locks), it repairs each differing block
// from its good copy (planRepairs with the in-sync set as authority: a strict majority when there
// is one, else the first in-sync copy, the local one first, that read the block), compares the
// repaired blocks again, and records the run like a scrub (ConditionScrubbed, saying which
// ranges, and the counters). It is not throttled: the volume is unavailable until it ends. Its
// cost is a read of the compared bytes on every in-sync copy (each on its own node, only
// checksums cross the network) plus the repaired bytes. Blocks no copy can read stay as they are
// (every copy fails them alike). The reconcile fails (and so Open) when the copies could not be
// compared, a repair failed or repaired blocks still differ. Once the copies agree it clears their
// write intent (ClearAllIntent; a copy without a log starts one), so the next reconcile compares
// only what is written from then on; a clear that fails is only logged.
//
// A copy dropped at the claim (in the status's in-sync set, but not reached) may lack such a
// write too, and its resync copies only its dirty regions: before anything is cleared, the
// intent regions are marked dirty for it (coverDropped), or it is forgotten, and so rebuilt, when
// the intent is not known.
func (b *backend) reconcile(ctx context.Context) error {
	inSync := b.co.InSync()
	dropped := b.droppedAtClaim(inSync)
	if len(inSync) < 2 && len(dropped) == 0 {
		return nil
	}
	intent, ierr := b.co.IntentExtents(ctx)
	if ierr != nil && !errors.Is(ierr, replica.ErrNoIntent) {
		return fmt.Errorf("replvol: open %s: reconciling the in-sync copies %v: %w", b.ref.key, inSync, ioErr(ierr))
	}
	if err := b.coverDropped(ctx, dropped, intent, ierr); err != nil {
		return fmt.Errorf("replvol: open %s: %w", b.ref.key, ioErr(err))
	}
	if len(inSync) < 2 {
		// One copy in sync agrees with itself: its log can start (or restart) empty now that the
		// dropped copies' dirty regions hold what its intent said.
		b.clearIntent(ctx)
		return nil
	}
	what, compare := b.reconcileScope(intent, ierr)
	r := b.scrub(ctx, what, replica.SyncOptions{}, inSync, compare)
	if ctx.Err() != nil {
		return fmt.Errorf("replvol: open %s: reconciling the in-sync copies %v: %w", b.ref.key, inSync, ctx.Err())
	}
	b.recordScrub(ctx, r)
	b.v.opts.Log.Info("in-sync copies reconciled at open", "volume", b.ref.key, "generation", b.ref.gen, "copies", r.replicas, "scope", what,
		"compared", r.compared, "mismatches", len(r.found), "repaired", r.repaired, "unreadableEverywhere", len(r.undecided), "took", r.took.String())
	if r.err != nil {
		return fmt.Errorf("replvol: open %s: reconciling the in-sync copies %v: %w", b.ref.key, r.replicas, ioErr(r.err))
	}
	if len(r.remaining) > 0 {
		return fmt.Errorf("replvol: open %s: reconciling the in-sync copies %v: %s still differ after the repair (%s); the open is retried",
			b.ref.key, r.replicas, blocks(len(r.remaining)), listBlocks(r.remaining))
	}
	b.clearIntent(ctx)
	return nil
}

// clearIntent clears the in-sync copies' write intent once they agree (ClearAllIntent); a clear
// that fails is only logged: the next reconcile compares the regions again.
func (b *backend) clearIntent(ctx context.Context) {
	if err := b.co.ClearAllIntent(ctx); err != nil {
		b.v.opts.Log.Info("write intent not cleared after the reconcile at open: the next open compares its regions again", "volume", b.ref.key, "error", err.Error())
	}
}

// reconcileScope says what the reconcile at open compares, from what IntentExtents returned:
// the union of the in-sync copies' write-intent regions, or every written extent when one of
// them cannot tell (ierr is replica.ErrNoIntent). It returns the run's name for its record and the
// comparison.
func (b *backend) reconcileScope(intent []replica.Extent, ierr error) (string, func(context.Context, replica.SyncOptions) (replica.ScrubResult, error)) {
	if ierr != nil {
		b.v.opts.Log.Info("reconcile at open: every written extent (the write intent is not known)", "volume", b.ref.key, "why", ierr.Error())
		return "reconcile at open over every written extent (a copy keeps no write-intent log)", b.co.Scrub
	}
	var regions, size int64
	for _, e := range intent {
		regions += (e.Length + replica.IntentRegionSize - 1) / replica.IntentRegionSize
		size += e.Length
	}
	b.v.opts.Log.Info(fmt.Sprintf("reconcile at open: %s (%s) of intent", regionCount(regions), mib(size)), "volume", b.ref.key)
	return fmt.Sprintf("reconcile at open over the write intent (%s, %s)", regionCount(regions), mib(size)),
		func(ctx context.Context, opts replica.SyncOptions) (replica.ScrubResult, error) {
			return b.co.Verify(ctx, intent, opts)
		}
}

// droppedAtClaim returns the copies the status said were in sync that the coordinator does not
// hold in sync (they failed its claim at Open), sorted.
func (b *backend) droppedAtClaim(inSync []string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for name, cs := range b.mu.copies {
		if cs.member && !slices.Contains(inSync, name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// coverDropped makes sure the copies dropped at the claim get every write of an earlier
// coordinator that may have landed on the in-sync copies only: it marks the in-sync copies'
// intent regions dirty for them (durably, with the dirty log's store), so their resync copies
// those regions too. When the intent is not known (ierr), such a write could be anywhere, so they
// are forgotten instead: the sync loop rebuilds them in full.
func (b *backend) coverDropped(ctx context.Context, dropped []string, intent []replica.Extent, ierr error) error {
	if len(dropped) == 0 {
		return nil
	}
	if ierr != nil {
		for _, name := range dropped {
			b.forgetMember(name)
			b.v.opts.Log.Info("copy dropped at the claim, and the write intent is not known: forgotten, rebuilt when it returns", "volume", b.ref.key, "store", name)
		}
		return nil
	}
	for _, e := range intent {
		if err := b.co.Dirty().Mark(ctx, e.Offset, e.Length, dropped...); err != nil {
			return fmt.Errorf("mark the write intent of the in-sync copies dirty for %v, dropped at the claim: %w", dropped, err)
		}
	}
	if len(intent) > 0 {
		b.v.opts.Log.Info("write intent marked dirty for the copies dropped at the claim", "volume", b.ref.key, "stores", dropped, "extents", len(intent))
	}
	return nil
}

// regionCount is "1 region" or "n regions".
func regionCount(n int64) string {
	if n == 1 {
		return "1 region"
	}
	return fmt.Sprintf("%d regions", n)
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
