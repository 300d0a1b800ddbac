package store

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/cobaltstore/cobalt/storage-engine/metafs"
)

// Metrics is a snapshot of the store's counters, for the embedder to export as it likes.
type Metrics struct {
	Commits      int64 // transactions committed
	CommitErrors int64 // transactions that failed
	Ops          int64 // operations in committed transactions
	BytesWritten int64 // data bytes in committed write operations
	// PreparedBytes is data written to new space by committing callers before their transaction
	// joined the commit queue (prepare.go).
	PreparedBytes int64
	Reads         int64
	ReadErrors    int64
	BytesRead     int64
	Corruptions   int64 // checksum mismatches seen (reads, staging, fsck)

	CommitLatency LatencySummary // from Commit call to return
	ReadLatency   LatencySummary
	KVSyncLatency LatencySummary // one synced pebble batch per group
	// Phases of a commit group: staging (CPU, metadata reads, read-modify-write reads), data
	// writes plus the device flush, and publication (waits for readers to drain).
	StageLatency   LatencySummary
	DataLatency    LatencySummary
	PublishLatency LatencySummary

	CommitGroups       int64   // groups committed (one device flush + one KV sync each)
	CommitGroupTxnsAvg float64 // transactions per group
	CommitGroupTxnsMax int64

	DeferredQueue      int   // deferred blocks waiting to be applied in place
	DeferredQueueBytes int64 //
	DeferredApplied    int64 // deferred blocks applied by the flusher
	DeferredReplayed   int64 // deferred blocks replayed at mount
	DeferredErrors     int64 // flusher cycles that failed (retried)

	AllocFree          int64   // free bytes
	AllocFragmentation float64 // 0 = one free extent, towards 1 = unit-sized pieces
	AllocErrors        int64   // releases the allocator refused (fsck explains)

	CachedOnodes int
	Cache        CacheMetrics // onode and buffer caches per shard and list, memory (caches.go)

	// MetaSync counts the syncs of the metadata file system (pebble's WAL syncs, one per commit
	// group, and its flushes' and compactions' syncs) with the time they spent writing and
	// flushing the device, which KVSyncLatency includes; zero when the metadata lives in a host
	// directory.
	MetaSync metafs.SyncStats
}

// LatencySummary summarizes a latency distribution. Quantiles are estimated from power-of-two
// buckets, interpolated within the bucket.
type LatencySummary struct {
	Count          int64
	Mean, P50, P99 time.Duration
	Max            time.Duration
}

// metricsState holds the live counters. All fields are atomics.
type metricsState struct {
	commits, commitErrors, ops, bytesWritten  atomic.Int64
	reads, readErrors, bytesRead, corruptions atomic.Int64
	groups, groupTxns, groupMax               atomic.Int64
	deferredApplied, deferredReplayed         atomic.Int64
	deferredErrors, allocErrors               atomic.Int64
	preparedBytes                             atomic.Int64
	commitLatency, readLatency, kvSyncLatency histogram
	stageLatency, dataLatency, publishLatency histogram
}

func (m *metricsState) maxGroup(n int64) {
	for {
		cur := m.groupMax.Load()
		if n <= cur || m.groupMax.CompareAndSwap(cur, n) {
			return
		}
	}
}

// histogram counts durations in buckets [2^i, 2^(i+1)) nanoseconds.
type histogram struct {
	buckets [64]atomic.Int64
	count   atomic.Int64
	sum     atomic.Int64
	max     atomic.Int64
}

func (h *histogram) observe(d time.Duration) {
	ns := max(int64(d), 1)
	h.buckets[63-bits.LeadingZeros64(uint64(ns))].Add(1)
	h.count.Add(1)
	h.sum.Add(ns)
	for {
		cur := h.max.Load()
		if ns <= cur || h.max.CompareAndSwap(cur, ns) {
			break
		}
	}
}

func (h *histogram) summary() LatencySummary {
	var counts [64]int64
	var total int64
	for i := range counts {
		counts[i] = h.buckets[i].Load()
		total += counts[i]
	}
	s := LatencySummary{Count: total, Max: time.Duration(h.max.Load())}
	if total == 0 {
		return s
	}
	s.Mean = time.Duration(h.sum.Load() / max(h.count.Load(), 1))
	q := func(p float64) time.Duration {
		rank := p * float64(total)
		var seen float64
		for i, c := range counts {
			if c == 0 {
				continue
			}
			if seen+float64(c) >= rank {
				lo := math.Ldexp(1, i)
				frac := (rank - seen) / float64(c)
				return min(time.Duration(lo+frac*lo), s.Max)
			}
			seen += float64(c)
		}
		return s.Max
	}
	s.P50, s.P99 = q(0.50), q(0.99)
	return s
}

// Metrics returns a snapshot of the store's metrics.
func (s *Store) Metrics() Metrics {
	m := &s.m
	out := Metrics{
		Commits: m.commits.Load(), CommitErrors: m.commitErrors.Load(), Ops: m.ops.Load(),
		BytesWritten: m.bytesWritten.Load(), PreparedBytes: m.preparedBytes.Load(), Reads: m.reads.Load(), ReadErrors: m.readErrors.Load(),
		BytesRead: m.bytesRead.Load(), Corruptions: m.corruptions.Load(),
		CommitLatency: m.commitLatency.summary(), ReadLatency: m.readLatency.summary(),
		KVSyncLatency: m.kvSyncLatency.summary(), StageLatency: m.stageLatency.summary(),
		DataLatency: m.dataLatency.summary(), PublishLatency: m.publishLatency.summary(),
		CommitGroups: m.groups.Load(), CommitGroupTxnsMax: m.groupMax.Load(),
		DeferredApplied: m.deferredApplied.Load(), DeferredReplayed: m.deferredReplayed.Load(),
		DeferredErrors: m.deferredErrors.Load(), AllocErrors: m.allocErrors.Load(),
		AllocFree: s.alloc.Free(), AllocFragmentation: s.alloc.Fragmentation(),
		CachedOnodes: s.cache.Len(), Cache: s.caches.metrics(),
	}
	if out.CommitGroups > 0 {
		out.CommitGroupTxnsAvg = float64(m.groupTxns.Load()) / float64(out.CommitGroups)
	}
	out.DeferredQueue, out.DeferredQueueBytes = s.overlay.len()
	if s.meta.fs != nil {
		out.MetaSync = s.meta.fs.SyncStats()
	}
	return out
}
