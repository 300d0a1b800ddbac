package store

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Group commit.
//
// Commit writes the whole units of large writes to new space (prepare.go), enqueues the
// transaction and waits. One committer goroutine takes every queued transaction (up to
// Options.MaxGroupTxns) as a group, in queue order, and:
//
//  1. stages them one after another into one indexed pebble batch and in-memory staged state
//     (allocating new space for copy-on-write data, logging deferred writes);
//  2. writes the remaining copy-on-write data in parallel and flushes the device once (the flush
//     also covers the group's prepared data);
//  3. applies the batch to pebble without waiting for the WAL sync;
//  4. publishes the new state (collections, onodes, refcounts, deferred overlay) under the gate;
//  5. hands the group to the syncer and starts on the next group, once fewer than
//     maxSyncingGroups groups wait for their sync (the transactions queued meanwhile form the
//     next group). A next group of fewer than smallGroupTxns transactions waits further, until
//     no group waits for its sync: rather than pay a sync of its own for a few transactions
//     right behind the previous one, it gathers those that queue until that sync ends, and
//     then yields while the committers that sync woke queue again (gather). A group that
//     finds no group syncing (QD1) does not wait; it yields once.
//
// The syncer waits for each group's WAL sync in order (the commit point), then releases the space
// the group freed and wakes its waiters.
//
// A transaction that fails while staging (missing object, no space, a read error) is dropped and
// the group is staged again without it, so a failed transaction has no effect and does not affect
// its neighbors. Transactions therefore apply in submission order, within and across collections.

type commitReq struct {
	txn   *Transaction
	preps map[int]*prepared // op index -> data already written to new space (prepare.go)
	err   error
	done  chan struct{}
}

// Commit applies txn atomically and durably: when Commit returns nil, the transaction survives any
// crash. Concurrent commits share one device flush and one KV sync. Once enqueued, a transaction is
// not canceled by ctx; ctx is only checked before.
func (s *Store) Commit(ctx context.Context, txn *Transaction) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(txn.ops) == 0 {
		return nil
	}
	start := time.Now()
	s.life.RLock()
	closed := s.closed
	s.life.RUnlock()
	if closed {
		return ErrClosed
	}
	if errp := s.failErr.Load(); errp != nil {
		s.m.commitErrors.Add(1)
		return *errp
	}
	if err := s.checkMetaSpace(txn); err != nil {
		s.m.commitErrors.Add(1)
		return err
	}
	preps, err := s.prepare(txn)
	if err != nil {
		s.m.commitErrors.Add(1)
		return err
	}
	req := &commitReq{txn: txn, preps: preps, done: make(chan struct{})}
	s.life.RLock()
	if s.closed {
		s.life.RUnlock()
		s.releasePrepared(preps)
		return ErrClosed
	}
	select {
	case s.queue <- req:
	case <-s.db.Stuck(): // the committer may never take it (stuck.go)
		s.life.RUnlock()
		s.m.commitErrors.Add(1)
		return s.stuckErr()
	}
	s.life.RUnlock()
	select {
	case <-req.done:
		err = req.err
	case <-s.db.Stuck(): // the group may never finish: its outcome is unknown (stuck.go)
		select {
		case <-req.done:
			err = req.err
		default:
			err = s.stuckErr()
		}
	}
	s.m.commitLatency.observe(time.Since(start))
	if err != nil {
		s.m.commitErrors.Add(1)
		return err
	}
	s.m.commits.Add(1)
	s.m.ops.Add(int64(len(txn.ops)))
	s.m.bytesWritten.Add(int64(txn.bytes))
	return nil
}

func (s *Store) commitLoop() {
	defer s.wg.Done()
	defer close(s.syncQ)
	for req := range s.queue {
		// Wait while maxSyncingGroups groups wait for their WAL sync: the transactions that arrive
		// meanwhile queue up and then share one group, instead of each paying for a group of
		// its own (staging, a pebble commit, a WAL write) only to wait for the same sync.
		s.syncSlots <- struct{}{}
		reqs := s.drain([]*commitReq{req})
		if len(reqs) < smallGroupTxns {
			// A small group while another one syncs: wait for that sync to end (take a second
			// slot, free once no other group holds one), gathering what queues meanwhile, so
			// that it does not start a device flush of its own for a few transactions.
			s.syncSlots <- struct{}{}
			// The sync that ended (now or just before) woke its committers, which commit again:
			// let those that are runnable join this group first.
			s.gather(len(reqs))
			reqs = s.drain(reqs)
			<-s.syncSlots
		}
		if !s.commitGroup(reqs) {
			<-s.syncSlots
		}
	}
}

// gather yields the processor while transactions keep joining the queue, until a yield adds none
// or the queue and the have requests already taken fill a group (MaxGroupTxns). It never waits
// for a transaction: it ends as soon as the committers that are runnable have queued theirs.
func (s *Store) gather(have int) {
	for {
		n := len(s.queue)
		if have+n >= s.opts.MaxGroupTxns {
			return
		}
		runtime.Gosched()
		if len(s.queue) == n {
			return
		}
	}
}

// drain appends queued requests to reqs without waiting, up to Options.MaxGroupTxns.
func (s *Store) drain(reqs []*commitReq) []*commitReq {
	for len(reqs) < s.opts.MaxGroupTxns {
		select {
		case r, ok := <-s.queue:
			if !ok {
				return reqs
			}
			reqs = append(reqs, r)
		default:
			return reqs
		}
	}
	return reqs
}

// smallGroupTxns: a group of fewer transactions waits for the sync of the group before it and
// gathers. Without it, QD16 on a loop device split the writers into two alternating groups of
// about 6 (0.15 device flushes per deferred 4 KiB overwrite, 0.38 per copy-on-write one); with
// it, groups of about 13.5 and 8.7 (0.09 and 0.23). Larger groups keep two in the sync pipeline.
const smallGroupTxns = 8

// maxSyncingGroups bounds the groups applied to the KV and waiting for their WAL sync: one being
// synced and one whose WAL write is queued behind it (pebble syncs it next), so the committer
// always has the next group ready without splitting the queue into many small groups. A small
// group's wait (commitLoop) takes a second slot, which is free once no other group holds one:
// that holds only with two slots.
const maxSyncingGroups = 2

// syncItem is a group whose batch is applied and published, waiting for its WAL sync.
type syncItem struct {
	g    *group
	live []*commitReq
}

// commitGroup runs one group through staging, data I/O, KV apply and publication, then hands it to
// the syncer, and reports whether it did. Every request is finished (done closed) here if it
// failed, else by the syncer.
func (s *Store) commitGroup(reqs []*commitReq) bool {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	if errp := s.failErr.Load(); errp != nil {
		s.failAll(reqs, *errp)
		finish(reqs)
		return false
	}
	live := make([]*commitReq, 0, len(reqs))
	live = append(live, reqs...)
	for len(live) > 0 {
		t0 := time.Now()
		g := s.newGroup()
		failedAt := -1
		for i, r := range live {
			if err := g.applyTxn(i, r.txn, r.preps); err != nil {
				r.err = err
				failedAt = i
				break
			}
		}
		if failedAt >= 0 {
			g.abort()
			s.releasePrepared(live[failedAt].preps)
			finish(live[failedAt : failedAt+1])
			live = append(live[:failedAt], live[failedAt+1:]...)
			continue
		}
		if err := g.finish(); err != nil {
			g.abort()
			s.failAll(live, err)
			finish(live)
			return false
		}
		t1 := time.Now()
		s.m.stageLatency.observe(t1.Sub(t0))
		bad, err := g.issueWrites()
		s.m.dataLatency.observe(time.Since(t1))
		if err != nil {
			g.abort()
			if bad < 0 { // the flush failed: nothing in the group can be trusted to be durable
				s.failAll(live, err)
				finish(live)
				return false
			}
			live[bad].err = err
			s.releasePrepared(live[bad].preps)
			finish(live[bad : bad+1])
			live = append(live[:bad], live[bad+1:]...)
			continue
		}
		// Apply the batch (visible in the KV at once) and queue its WAL sync; pebble syncs the
		// batches of consecutive groups together.
		if err := s.db.ApplyNoSyncWait(g.batch, pebble.Sync); err != nil {
			// The KV may or may not hold the batch; the in-memory state can no longer be trusted.
			err = fmt.Errorf("commit metadata: %w: %w", ErrFailed, err)
			s.failErr.Store(&err)
			g.abortAfterFailedCommit()
			setAll(live, err)
			finish(live)
			return false
		}
		t2 := time.Now()
		g.publish()
		s.m.publishLatency.observe(time.Since(t2))
		s.inflight.Add(1)
		s.syncQ <- &syncItem{g: g, live: live}
		return true
	}
	return false
}

// syncLoop waits, in group order, for each applied group's WAL sync, then makes the group's freed
// space reusable, lets the deferred flusher apply its deferred writes, and acknowledges its
// transactions. Space freed by a group is reused only once the group is durable, so a crash can
// never find a surviving onode pointing at reused space.
func (s *Store) syncLoop() {
	defer s.wg.Done()
	for it := range s.syncQ {
		g := it.g
		t := time.Now()
		err := g.batch.SyncWait()
		s.m.kvSyncLatency.observe(time.Since(t))
		if err == nil {
			if errp := s.failErr.Load(); errp != nil {
				err = *errp // an earlier group failed: this one was staged on uncertain state
			}
		} else {
			err = fmt.Errorf("sync metadata: %w: %w", ErrFailed, err)
			s.failErr.Store(&err)
		}
		if err != nil {
			g.dropBuffers()
			setAll(it.live, err)
		} else {
			s.durableSeq.Store(g.nextSeq - 1)
			g.release()
			g.finishBuffers()
			s.m.groups.Add(1)
			s.m.groupTxns.Add(int64(len(it.live)))
			s.m.maxGroup(int64(len(it.live)))
		}
		_ = g.batch.Close()
		finish(it.live)
		<-s.syncSlots
		s.inflight.Done()
	}
}

// finish wakes the committers of reqs.
func finish(reqs []*commitReq) {
	for _, r := range reqs {
		close(r.done)
	}
}

// failAll fails every request with err and releases their prepared space.
func (s *Store) failAll(reqs []*commitReq, err error) {
	for _, r := range reqs {
		r.err = err
		s.releasePrepared(r.preps)
	}
}

// setAll fails every request with err, keeping prepared space (the KV may reference it).
func setAll(reqs []*commitReq, err error) {
	for _, r := range reqs {
		r.err = err
	}
}

// issueWrites writes the group's copy-on-write data in parallel and flushes the device once. On a
// write error it returns the index of the transaction whose write failed; on a flush error -1.
//
// The flush cannot be left to the WAL sync's, even when the WAL is on the same device (one flush
// per group instead of two in series): a device persists unflushed writes in any order, so at a
// power cut the group's WAL record, written before that flush, may survive while the data it maps
// is lost, and pebble replays every valid record it finds (TestDataDurableBeforeItsMetadata).
// The data must be durable before the batch that maps it is written anywhere.
func (g *group) issueWrites() (int, error) {
	if len(g.writes) == 0 && !g.needFlush {
		return 0, nil
	}
	const par = 16
	sem := make(chan struct{}, par)
	var mu sync.Mutex
	bad, firstErr := -1, error(nil)
	var wg sync.WaitGroup
	for _, w := range g.writes {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, err := g.s.dev.WriteAt(w.buf, int64(w.phys)); err != nil {
				mu.Lock()
				if firstErr == nil {
					bad, firstErr = w.txn, fmt.Errorf("write %d bytes at device offset %d: %w", len(w.buf), w.phys, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return bad, firstErr
	}
	if err := g.s.dev.Flush(); err != nil {
		return -1, fmt.Errorf("flush data: %w", err)
	}
	return 0, nil
}

// abort undoes the staging of a group that will not commit: space it allocated is released.
func (g *group) abort() {
	g.unpin()
	if len(g.allocated) > 0 {
		if err := g.s.alloc.Release(g.allocated); err != nil {
			// The allocator refused space it handed out: record it; fsck will report the mismatch.
			g.s.m.allocErrors.Add(1)
		}
	}
	_ = g.batch.Close()
}

// abortAfterFailedCommit drops the batch without releasing space: the batch may be durable.
func (g *group) abortAfterFailedCommit() {
	for k, st := range g.onodes {
		if st.dirty {
			g.s.cache.Remove(k)
			g.s.caches.discard(k)
		}
	}
	g.unpin()
	_ = g.batch.Close()
}
