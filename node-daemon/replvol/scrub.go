package replvol

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/node-daemon/replica"
)

// ConditionScrubbed is the condition of a replicated Volume's status where the node serving it
// records its last scrub: True when the copies compared equal (after repairs), False when copies
// still differ (reasons ReasonScrubNotRepaired, ReasonScrubRepairFailed) or the scrub failed
// (ReasonScrubFailed). The operator leaves conditions it does not own alone.
const ConditionScrubbed = "Scrubbed"

// Reasons of ConditionScrubbed.
const (
	// ReasonScrubEqual: the copies compared equal and every block read.
	ReasonScrubEqual = "CopiesEqual"
	// ReasonScrubRepaired: blocks differed or could not be read on a copy; they were repaired
	// from a good copy and compared equal after.
	ReasonScrubRepaired = "Repaired"
	// ReasonScrubNotRepaired: blocks differ between copies that read them without error and no
	// majority tells the good one; nothing was repaired (an operator must decide).
	ReasonScrubNotRepaired = "MismatchNotRepaired"
	// ReasonScrubRepairFailed: a repair failed, or the repaired blocks still differ.
	ReasonScrubRepairFailed = "RepairFailed"
	// ReasonScrubFailed: the scrub could not compare the copies.
	ReasonScrubFailed = "ScrubFailed"
)

// maxScrubBlocksListed bounds the blocks a scrub's status message lists.
const maxScrubBlocksListed = 8

// runScrub is the volume's scrub loop: a scrub one ScrubInterval (plus up to a tenth, at random)
// after Open, then one ScrubInterval after each scrub that ran; a scrub that could not run (a
// copy not in sync, a sync running) is tried again every SyncInterval. It ends with ctx.
func (b *backend) runScrub(ctx context.Context) {
	defer b.loops.Done()
	interval := b.v.opts.ScrubInterval
	t := time.NewTimer(interval + rand.N(interval/10+1))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		next := b.v.opts.SyncInterval
		if b.scrubOnce(ctx) {
			next = interval
		}
		t.Reset(next)
	}
}

// pauseScrub cancels the running scrub, if any, and keeps another from starting until the
// returned function is called.
func (b *backend) pauseScrub() (resume func()) {
	b.mu.Lock()
	cancel := b.mu.scrubCancel
	b.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	b.scrubMu.Lock()
	return b.scrubMu.Unlock
}

// scrubOnce scrubs the volume when every copy the spec places is in sync and no sync runs, and
// reports whether it ran to its end (failed scrubs included, canceled ones not).
func (b *backend) scrubOnce(ctx context.Context) bool {
	if !b.scrubMu.TryLock() {
		b.v.opts.Log.V(1).Info("scrub postponed: a copy is being synced", "volume", b.ref.key)
		return false
	}
	defer b.scrubMu.Unlock()
	vol, err := b.ref.read(ctx)
	if err != nil {
		if ctx.Err() == nil {
			b.v.opts.Log.Info("scrub cannot read the Volume", "volume", b.ref.key, "error", err.Error())
		}
		return false
	}
	if why := b.notScrubbable(vol); why != "" {
		b.v.opts.Log.V(1).Info("scrub postponed", "volume", b.ref.key, "why", why)
		return false
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	b.mu.Lock()
	b.mu.scrubCancel = cancel
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.mu.scrubCancel = nil
		b.mu.Unlock()
	}()
	r := b.scrub(sctx, "scrub", replica.SyncOptions{Limiter: b.v.opts.Limiter}, nil, b.co.Scrub)
	if sctx.Err() != nil {
		b.v.opts.Log.Info("scrub interrupted (a sync or Close); tried again later", "volume", b.ref.key, "compared", r.compared, "repaired", r.repaired)
		return false
	}
	b.recordScrub(ctx, r)
	return true
}

// notScrubbable says why the volume cannot be scrubbed now: a copy the spec places is not InSync
// in the status or not in the coordinator's in-sync set, or fewer than two copies are in sync.
func (b *backend) notScrubbable(vol *v1alpha1.Volume) string {
	inSync := b.co.InSync()
	for store := range specStores(vol) {
		c := copyOf(&vol.Status, store)
		switch {
		case c == nil:
			return fmt.Sprintf("the copy on store %s is not listed in status yet", store)
		case c.State != v1alpha1.ReplicaInSync:
			return fmt.Sprintf("the copy on store %s is %s", store, c.State)
		case !slices.Contains(inSync, store):
			return fmt.Sprintf("the copy on store %s is not in the coordinator's in-sync set", store)
		}
	}
	if len(inSync) < 2 {
		return fmt.Sprintf("%d copy in sync, nothing to compare it with", len(inSync))
	}
	return ""
}

// scrubRun is what one scrub found and did.
type scrubRun struct {
	// what is "scrub" for a scheduled scrub, "reconcile at open" for the one Open runs.
	what     string
	started  time.Time
	took     time.Duration
	replicas []string
	// compared is the bytes compared on each copy, first pass and verification.
	compared int64
	// found are the first pass's mismatches; undecided the ones whose good copy cannot be
	// told; remaining the repaired ones that still differ after the repair.
	found, undecided, remaining []replica.Mismatch
	// repaired is the bytes repaired, repairedOnto by copy, repairs says what was repaired from
	// where ("store-c from store-a").
	repaired     int64
	repairedOnto map[string]int64
	repairs      []string
	err          error
}

// repairPlan groups the decided mismatches by their good copy and the copies to repair.
type repairPlan struct {
	good    string
	bad     []string
	extents []replica.Extent
}

// planRepairs splits mismatches into repairs (by good copy and bad copies, in first-seen order)
// and the undecided ones. The good copy of a block is the one a strict majority agrees with (see
// replica.Mismatch.Majority); with authority (the reconcile at open), a block without a majority
// is decided by the first copy in authority that read it (see byAuthority), so only blocks no
// copy could read stay undecided.
func planRepairs(mism []replica.Mismatch, authority []string) (plans []repairPlan, undecided []replica.Mismatch) {
	for _, m := range mism {
		good, bad, ok := m.Majority()
		if !ok && authority != nil {
			good, bad, ok = byAuthority(m, authority)
		}
		if !ok {
			undecided = append(undecided, m)
			continue
		}
		i := slices.IndexFunc(plans, func(p repairPlan) bool { return p.good == good && slices.Equal(p.bad, bad) })
		if i < 0 {
			plans = append(plans, repairPlan{good: good, bad: bad})
			i = len(plans) - 1
		}
		plans[i].extents = append(plans[i].extents, m.Extent)
	}
	return plans, undecided
}

// scrub compares every in-sync copy (compare: b.co.Scrub over every extent, or a comparison of
// fewer ranges), repairs the blocks whose good copy is known (planRepairs, with authority) from
// it onto the bad ones, and compares the repaired blocks again; what names the run in its record.
func (b *backend) scrub(ctx context.Context, what string, opts replica.SyncOptions, authority []string,
	compare func(context.Context, replica.SyncOptions) (replica.ScrubResult, error)) (r scrubRun) {
	r = scrubRun{what: what, started: time.Now(), repairedOnto: map[string]int64{}}
	defer func() { r.took = time.Since(r.started) }()
	res, err := compare(ctx, opts)
	r.replicas, r.compared, r.found = res.Replicas, res.Compared, res.Mismatches
	if err != nil {
		r.err = err
		return r
	}
	plans, undecided := planRepairs(res.Mismatches, authority)
	r.undecided = undecided
	var repairedExtents []replica.Extent
	var errs []error
	for _, p := range plans {
		for _, target := range p.bad {
			n, err := b.co.Repair(ctx, p.good, []string{target}, p.extents, opts)
			r.repaired += n
			r.repairedOnto[target] += n
			if err != nil {
				errs = append(errs, err)
				continue
			}
			r.repairs = append(r.repairs, fmt.Sprintf("%s from %s", target, p.good))
		}
		repairedExtents = append(repairedExtents, p.extents...)
	}
	if len(repairedExtents) > 0 {
		vres, err := b.co.Verify(ctx, repairedExtents, opts)
		r.compared += vres.Compared
		r.remaining = vres.Mismatches
		errs = append(errs, err)
	}
	r.err = errors.Join(errs...)
	return r
}

// outcome is the scrub's condition status, reason and message.
func (r *scrubRun) outcome(node string) (metav1.ConditionStatus, string, string) {
	head := fmt.Sprintf("%s by node %s at %s compared %s on copies %s in %s",
		r.what, node, r.started.UTC().Format(time.RFC3339), mib(r.compared), strings.Join(r.replicas, ", "), r.took.Round(time.Millisecond))
	switch {
	case r.err != nil && len(r.found) == 0 && r.repaired == 0:
		return metav1.ConditionFalse, ReasonScrubFailed, clip(fmt.Sprintf("%s: failed: %v (tried again in a scrub interval)", head, r.err))
	case len(r.undecided) > 0:
		return metav1.ConditionFalse, ReasonScrubNotRepaired, clip(fmt.Sprintf(
			"%s: %s differ between copies that read them without error and no majority tells the good copy, so they were not repaired: %s%s",
			head, blocks(len(r.undecided)), listBlocks(r.undecided), r.repairedText()))
	case r.err != nil || len(r.remaining) > 0:
		msg := fmt.Sprintf("%s: %s differed or were unreadable: %s%s", head, blocks(len(r.found)), listBlocks(r.found), r.repairedText())
		if len(r.remaining) > 0 {
			msg += fmt.Sprintf("; still differing after the repair: %s", listBlocks(r.remaining))
		}
		if r.err != nil {
			msg += fmt.Sprintf("; repair failed: %v", r.err)
		}
		return metav1.ConditionFalse, ReasonScrubRepairFailed, clip(msg)
	case len(r.found) > 0:
		return metav1.ConditionTrue, ReasonScrubRepaired, clip(fmt.Sprintf("%s: %s differed or were unreadable: %s%s; the copies compared equal after",
			head, blocks(len(r.found)), listBlocks(r.found), r.repairedText()))
	}
	return metav1.ConditionTrue, ReasonScrubEqual, head + ": the copies are equal"
}

// blocks is "1 block" or "n blocks".
func blocks(n int) string {
	if n == 1 {
		return "1 block"
	}
	return fmt.Sprintf("%d blocks", n)
}

func (r *scrubRun) repairedText() string {
	if r.repaired == 0 {
		return ""
	}
	return fmt.Sprintf("; repaired %s (%s)", mib(r.repaired), strings.Join(r.repairs, ", "))
}

// listBlocks describes the first mismatches: range, checksum per copy, unreadable copies.
func listBlocks(mism []replica.Mismatch) string {
	var parts []string
	for i, m := range mism {
		if i == maxScrubBlocksListed {
			parts = append(parts, fmt.Sprintf("and %d more", len(mism)-i))
			break
		}
		var copies []string
		for name, sum := range m.Checksums {
			copies = append(copies, fmt.Sprintf("%s crc32c %08x", name, sum))
		}
		for name := range m.Unreadable {
			copies = append(copies, name+" unreadable (corrupt)")
		}
		slices.Sort(copies)
		parts = append(parts, fmt.Sprintf("[%d, +%d) %s", m.Offset, m.Length, strings.Join(copies, ", ")))
	}
	return strings.Join(parts, "; ")
}

// recordScrub counts the scrub in the copies' stats, logs it and records it in the Volume's
// status (condition ConditionScrubbed).
func (b *backend) recordScrub(ctx context.Context, r scrubRun) {
	bad := map[string]int64{}
	for _, m := range r.found {
		if _, names, ok := m.Majority(); ok {
			for _, n := range names {
				bad[n]++
			}
			continue
		}
		for n := range m.Checksums {
			bad[n]++
		}
		for n := range m.Unreadable {
			bad[n]++
		}
	}
	b.mu.Lock()
	for _, name := range r.replicas {
		if cs := b.mu.copies[name]; cs != nil {
			cs.scrubbed += r.compared
			cs.scrubMismatches += bad[name]
			cs.scrubRepaired += r.repairedOnto[name]
		}
	}
	b.mu.lastScrub = r.started.Add(r.took)
	b.mu.Unlock()

	status, reason, msg := r.outcome(b.v.opts.NodeName)
	log := b.v.opts.Log.WithValues("volume", b.ref.key, "compared", r.compared, "mismatches", len(r.found), "repaired", r.repaired, "took", r.took.String())
	if status == metav1.ConditionTrue {
		log.Info("scrub done", "reason", reason)
	} else {
		log.Info("scrub found copies it could not make equal, or failed", "reason", reason, "message", msg)
	}
	if reason != ReasonScrubEqual {
		b.event("", corev1.EventTypeWarning, scrubEventReason(reason), actionScrub, "%s", msg)
	}
	cond := metav1.Condition{Type: ConditionScrubbed, Status: status, Reason: reason, Message: msg}
	if err := b.ref.update(ctx, func(st *v1alpha1.VolumeStatus) bool {
		if c := meta.FindStatusCondition(st.Conditions, ConditionScrubbed); c != nil && c.Status == cond.Status && c.Reason == cond.Reason && c.Message == cond.Message {
			return false
		}
		return meta.SetStatusCondition(&st.Conditions, cond)
	}); err != nil && ctx.Err() == nil {
		log.Info("could not record the scrub in the Volume's status", "error", err.Error())
	}
}
