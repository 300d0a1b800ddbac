package bench

import (
	"fmt"
	"time"

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
	return fmt.Sprintf("%d commit groups, %.1f txns/group; mean commit %v/txn; mean per group: stage %v, data+flush %v, publish %v, kv sync wait %v",
		groups, float64(txns)/float64(groups), meanBetween(before.CommitLatency, after.CommitLatency),
		meanBetween(before.StageLatency, after.StageLatency), meanBetween(before.DataLatency, after.DataLatency),
		meanBetween(before.PublishLatency, after.PublishLatency), meanBetween(before.KVSyncLatency, after.KVSyncLatency))
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
