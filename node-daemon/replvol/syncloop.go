package replvol

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/node-daemon/replica"
)

// Kinds of sync, as ReplicationStat.SyncedBytes names them.
const (
	KindRebuild = "rebuild"
	KindResync  = "resync"
)

// run is the volume's sync loop: right away, then every SyncInterval, until ctx ends.
func (b *backend) run(ctx context.Context) {
	defer b.loops.Done()
	t := time.NewTicker(b.v.opts.SyncInterval)
	defer t.Stop()
	for {
		b.syncOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// syncOnce re-reads the Volume and brings its copies' states in line with the coordinator's
// in-sync set: it demotes InSync copies the coordinator does not write, promotes CatchingUp ones
// it holds in sync, and resyncs or rebuilds the CatchingUp copies of the spec it can reach.
func (b *backend) syncOnce(ctx context.Context) {
	b.syncMu.Lock()
	defer b.syncMu.Unlock()
	vol, err := b.ref.read(ctx)
	if err != nil {
		_ = b.noteFenced(err)
		if ctx.Err() == nil {
			b.v.opts.Log.Info("sync loop cannot read the Volume", "volume", b.ref.key, "error", err.Error())
		}
		return
	}
	b.forgetLeft(ctx, vol)
	inSpec := specStores(vol)
	for _, c := range vol.Status.Replicas {
		if ctx.Err() != nil {
			return
		}
		cs := b.copyState(c)
		switch c.State {
		case v1alpha1.ReplicaInSync:
			b.demoteIfNotWritten(ctx, c.Store)
		case v1alpha1.ReplicaCatchingUp:
			if !inSpec[c.Store] {
				continue // moving away: never brought back
			}
			if b.promoteIfWritten(ctx, c.Store) {
				continue
			}
			b.mu.Lock()
			member := cs.member
			b.mu.Unlock()
			resume := b.pauseScrub()
			b.syncCopy(ctx, c.Store, member)
			resume()
		}
	}
}

// forgetLeft forgets the copies whose Store is no longer in the Volume's status.replicas (retired:
// replaced, or moved away and in sync elsewhere): the coordinator stops writing and reading them,
// and their state here goes, so a copy placed later on the same Store (a new, empty copy with the
// same volume ID) is rebuilt, not resynced from the old copy's dirty regions, and is never taken
// for an in-sync member before it was.
func (b *backend) forgetLeft(ctx context.Context, vol *v1alpha1.Volume) {
	listed := make(map[string]bool, len(vol.Status.Replicas))
	for _, c := range vol.Status.Replicas {
		listed[c.Store] = true
	}
	b.statusMu.Lock()
	defer b.statusMu.Unlock()
	b.mu.Lock()
	var left []string
	for name := range b.mu.copies {
		if !listed[name] {
			left = append(left, name)
			delete(b.mu.copies, name)
		}
	}
	b.mu.Unlock()
	for _, name := range left {
		if ctx.Err() != nil {
			return
		}
		was := b.co.Remove(name)
		b.v.opts.Log.Info("copy left the Volume's status: forgotten (a later copy on its Store is rebuilt)", "volume", b.ref.key, "store", name, "wasMember", was)
		b.detachDirtyLog(name)
	}
}

// forgetMember takes the copy on store out of the coordinator (Coordinator.Remove) and marks it
// no member, so the sync loop rebuilds it instead of resyncing it from the dirty log.
func (b *backend) forgetMember(store string) {
	b.co.Remove(store)
	b.mu.Lock()
	b.mu.copies[store].member = false
	b.mu.Unlock()
}

// detachDirtyLog makes the dirty log live in memory from now on when the copy whose volume keeps
// it (store) leaves: it is retired (and deleted) or replaced, and a write that must mark a region
// would otherwise fail on it.
func (b *backend) detachDirtyLog(store string) {
	if store == "" || store != b.dirtyOn {
		return
	}
	b.co.Dirty().Detach()
	b.v.opts.Log.Info("the copy that kept the dirty log left: the dirty log lives in memory from now on (after a restart the copies it marks are rebuilt)", "volume", b.ref.key, "store", store)
}

// inSync reports whether the coordinator holds the copy in sync.
func (b *backend) inSync(store string) bool { return slices.Contains(b.co.InSync(), store) }

// demoteIfNotWritten writes CatchingUp for a copy the status says InSync but the coordinator does
// not write (made InSync after Open): it misses writes and must be rebuilt.
func (b *backend) demoteIfNotWritten(ctx context.Context, store string) {
	b.statusMu.Lock()
	defer b.statusMu.Unlock()
	if b.inSync(store) {
		return
	}
	msg := fmt.Sprintf("not written by the coordinator of node %s (generation %d) since %s: it was not InSync when the volume was opened; a rebuild follows",
		b.v.opts.NodeName, b.ref.gen, time.Now().UTC().Format(time.RFC3339))
	if err := b.writeState(ctx, store, v1alpha1.ReplicaCatchingUp, msg); err != nil {
		b.v.opts.Log.Info("could not mark a copy the coordinator does not write CatchingUp", "volume", b.ref.key, "store", store, "error", err.Error())
	}
}

// promoteIfWritten writes InSync for a CatchingUp copy that the coordinator holds in sync and
// never dropped: every write since Open reached it (the operator marked it after its Store was
// not Ready for a while). It reports whether the coordinator holds the copy in sync (nothing to
// sync then).
func (b *backend) promoteIfWritten(ctx context.Context, store string) bool {
	b.statusMu.Lock()
	defer b.statusMu.Unlock()
	if !b.inSync(store) {
		return false
	}
	b.mu.Lock()
	dropped := b.mu.copies[store].dropped
	b.mu.Unlock()
	if dropped {
		return true // a drop was recorded; the coordinator takes it out at once
	}
	b.writeInSync(ctx, store)
	return true
}

// writeInSync writes the copy InSync and reports whether the status has it. REQUIRES:
// b.statusMu, and the coordinator holds it in sync with no drop recorded since.
func (b *backend) writeInSync(ctx context.Context, store string) bool {
	if err := b.writeState(ctx, store, v1alpha1.ReplicaInSync, ""); err != nil {
		b.v.opts.Log.Info("could not mark an in-sync copy InSync; retrying next interval", "volume", b.ref.key, "store", store, "error", err.Error())
		return false
	}
	b.v.opts.Log.Info("copy in sync", "volume", b.ref.key, "store", store)
	return true
}

// writeState records the copy on store in state with msg in the Volume's status and, once that
// is written, in the backend's view of it. REQUIRES: b.statusMu.
func (b *backend) writeState(ctx context.Context, store string, state v1alpha1.ReplicaState, msg string) error {
	if err := b.ref.update(ctx, func(st *v1alpha1.VolumeStatus) bool {
		return setState(st, store, state, msg)
	}); err != nil {
		return err
	}
	b.mu.Lock()
	b.mu.copies[store].state = state
	b.mu.Unlock()
	return nil
}

// syncCopy resyncs (member) or rebuilds the copy on store from an in-sync one and, when the copies
// compared equal, writes it InSync; on failure the copy's message says why.
func (b *backend) syncCopy(ctx context.Context, store string, member bool) {
	kind := KindRebuild
	if member {
		kind = KindResync
	}
	b.mu.Lock()
	avoid := b.mu.copies[store].failedSource
	b.mu.Unlock()
	source := b.source(avoid)
	if source == "" {
		return // no in-sync copy: every I/O fails anyway
	}
	o, err := b.v.openCopy(ctx, store, b.ref.uid)
	if err != nil {
		b.message(ctx, store, fmt.Sprintf("waiting to %s: %v (retried every %s)", kind, err, b.v.opts.SyncInterval))
		return
	}
	b.mu.Lock()
	drops := b.mu.copies[store].drops
	b.mu.Unlock()

	started := time.Now()
	rep := newReporter(kind, source, started)
	b.message(ctx, store, rep.text())
	repDone := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		b.reportProgress(ctx, store, rep, repDone)
	}()
	opts := replica.SyncOptions{Limiter: b.v.opts.Limiter, Progress: rep.set}
	var res replica.SyncResult
	if member {
		res, err = b.co.Resync(ctx, source, o.s, opts)
	} else {
		res, err = b.co.Rebuild(ctx, source, o.s, opts)
	}
	close(repDone)
	wg.Wait()

	b.mu.Lock()
	cs := b.mu.copies[store]
	cs.synced[kind] += res.Copied
	cs.compared += res.Compared
	b.mu.Unlock()
	if errors.Is(err, replica.ErrReplaced) {
		b.forgetReplaced(ctx, store, o, err)
		return
	}
	if err != nil {
		if o.close != nil {
			if cerr := o.close(); cerr != nil {
				b.v.opts.Log.V(1).Info("closing the stream of a failed sync", "volume", b.ref.key, "store", store, "error", cerr.Error())
			}
		}
		if ctx.Err() == nil {
			b.v.opts.Log.Info("sync of a copy failed; retrying next interval", "volume", b.ref.key, "store", store, "kind", kind, "error", err.Error())
			msg := clip(fmt.Sprintf("%s from %s failed at %s after %d bytes copied: %v (retried every %s)",
				kind, source, time.Now().UTC().Format(time.RFC3339), res.Copied, err, b.v.opts.SyncInterval))
			b.message(ctx, store, msg)
			b.mu.Lock()
			cs.failedSource = source
			repeated := slices.Contains(cs.syncFailures, err.Error())
			if !repeated && len(cs.syncFailures) < maxSyncFailures {
				cs.syncFailures = append(cs.syncFailures, err.Error())
			}
			b.mu.Unlock()
			if !repeated {
				b.event(store, corev1.EventTypeWarning, EventReplicaSyncFailed, actionSync, "%s", msg)
			}
		}
		return
	}
	b.closeLater(o.close)
	b.v.opts.Log.Info("copy synced", "volume", b.ref.key, "store", store, "kind", kind, "copied", res.Copied, "compared", res.Compared, "took", time.Since(started).String())
	b.statusMu.Lock()
	defer b.statusMu.Unlock()
	b.mu.Lock()
	cs.member = true
	cs.syncFailures, cs.failedSource = nil, ""
	noDrop := cs.drops == drops
	if noDrop {
		cs.dropped = false
	}
	b.mu.Unlock()
	if noDrop && b.inSync(store) && b.writeInSync(ctx, store) {
		reason := EventReplicaRebuilt
		if member {
			reason = EventReplicaResynced
		}
		b.event(store, corev1.EventTypeNormal, reason, actionSync, "%s of the copy on store %s from %s by node %s: %s copied, %s compared equal, in %s; in sync again",
			kind, store, source, b.v.opts.NodeName, mib(res.Copied), mib(res.Compared), time.Since(started).Round(time.Millisecond))
	}
}

// forgetReplaced forgets the member on store whose resync found another copy there than the one
// the coordinator wrote (deleted and created again since: its dirty regions say nothing of what
// it lacks), so that the next pass rebuilds it.
func (b *backend) forgetReplaced(ctx context.Context, store string, o *opened, err error) {
	if o.close != nil {
		if cerr := o.close(); cerr != nil {
			b.v.opts.Log.V(1).Info("closing the stream of a replaced copy", "volume", b.ref.key, "store", store, "error", cerr.Error())
		}
	}
	b.forgetMember(store)
	b.detachDirtyLog(store)
	b.v.opts.Log.Info("the copy is not the one this coordinator wrote (deleted and created again): forgotten, rebuilt next", "volume", b.ref.key, "store", store, "error", err.Error())
	b.message(ctx, store, clip(fmt.Sprintf("a rebuild follows: %v", err)))
}

// source is the copy to sync from: the local one when in sync, else the first in-sync one; but
// not avoid (the source of a sync that failed: it may be unable to read a block, which only a
// scrub repairs, and scrubs wait for the syncs) while another copy is in sync.
func (b *backend) source(avoid string) string {
	in := b.co.InSync() // the local replica comes first when it is in sync
	for _, name := range in {
		if name != avoid {
			return name
		}
	}
	if len(in) == 0 {
		return ""
	}
	return in[0]
}

// message writes msg as the message of the CatchingUp copy on store (best effort).
func (b *backend) message(ctx context.Context, store, msg string) {
	if err := b.ref.update(ctx, func(st *v1alpha1.VolumeStatus) bool { return setMessage(st, store, msg) }); err != nil && ctx.Err() == nil {
		b.v.opts.Log.V(1).Info("could not write a copy's message", "volume", b.ref.key, "store", store, "error", err.Error())
	}
}

// reportProgress writes the sync's progress into the copy's message every progressInterval
// while it changes, until done is closed.
func (b *backend) reportProgress(ctx context.Context, store string, rep *reporter, done <-chan struct{}) {
	t := time.NewTicker(progressInterval)
	defer t.Stop()
	last := ""
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-t.C:
			if msg := rep.text(); msg != last {
				b.message(ctx, store, msg)
				last = msg
			}
		}
	}
}
