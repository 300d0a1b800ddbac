package bench

import (
	"fmt"
	"time"

	"github.com/cobaltstore/cobalt/storage-engine/metafs"
	"github.com/cobaltstore/cobalt/storage-engine/store"
)

// GroupPhases summarizes the commit groups a store ran between two snapshots of its metrics (taken
// before and after one workload): their number, transactions per group, the mean Commit latency
// per transaction and the mean time per group of each phase (store.Metrics): staging (CPU), data
// writes plus the device flush, publication, and the wait for the KV's WAL sync (on the host file
// system while the metadata lives in the state directory; groups overlap it with the next group's
// staging). It is how the bench says where a write workload's time goes. Workloads without groups
// (reads) give "".
func GroupPhases(before, after store.Metrics) string {
	groups := after.CommitGroups - before.CommitGroups
	if groups <= 0 {
		return ""
	}
	txns := after.Commits - before.Commits
	line := fmt.Sprintf("%d commit groups, %.1f txns/group; mean commit %v/txn; mean per group: stage %v, data+flush %v, publish %v, kv sync wait %v",
		groups, float64(txns)/float64(groups), meanBetween(before.CommitLatency, after.CommitLatency),
		meanBetween(before.StageLatency, after.StageLatency), meanBetween(before.DataLatency, after.DataLatency),
		meanBetween(before.PublishLatency, after.PublishLatency), meanBetween(before.KVSyncLatency, after.KVSyncLatency))
	return line + metaSyncs(before.MetaSync, after.MetaSync)
}

// metaSyncs says, for the metadata file system's syncs between two snapshots, how many there
// were and their mean time writing the device, flushing it, and (for those that recorded a size)
// journaling; the rest of the kv sync wait is pebble's and the scheduler's. "" when there were
// none (metadata in a host directory).
func metaSyncs(a, b metafs.SyncStats) string {
	n := b.Syncs - a.Syncs
	if n <= 0 {
		return ""
	}
	per := func(d time.Duration, k int64) time.Duration { return (d / time.Duration(k)).Round(time.Microsecond) }
	s := fmt.Sprintf("; %d metadata syncs, each write %v + flush %v", n, per(b.Write-a.Write, n), per(b.Flush-a.Flush, n))
	if j := b.Journaled - a.Journaled; j > 0 {
		s += fmt.Sprintf(" (%d also journaled, %v each)", j, per(b.Journal-a.Journal, j))
	}
	return s
}

// meanBetween is the mean of the observations added to a latency summary between snapshots a and
// b (0 when none were), rounded to the microsecond.
func meanBetween(a, b store.LatencySummary) time.Duration {
	n := b.Count - a.Count
	if n <= 0 {
		return 0
	}
	sum := int64(b.Mean)*b.Count - int64(a.Mean)*a.Count
	return time.Duration(sum / n).Round(time.Microsecond)
}
