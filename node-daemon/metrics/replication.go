package metrics

import (
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ReplicaStat is one copy of a replicated volume as the node coordinating the volume's I/O sees
// it at a scrape.
type ReplicaStat struct {
	// Volume is the Volume object, "<namespace>/<name>".
	Volume string
	// Store and Node say where the copy lives.
	Store, Node string
	// State is the copy's state (InSync, CatchingUp, Lost, ...).
	State string
	// Generation is the attachment generation the volume is coordinated at.
	Generation uint64
	// DirtyBytes is what the copy misses, as far as the dirty-region log knows: the replica lag.
	DirtyBytes int64
	// SyncedBytes counts the bytes copied onto the copy since the volume was opened, by kind
	// (rebuild, resync, repair).
	SyncedBytes map[string]int64
	// ComparedBytes counts the bytes compared by checksum between the copy and a source.
	ComparedBytes int64
	// ScrubbedBytes, ScrubMismatches and ScrubRepairedBytes count, since the volume was opened
	// here, the bytes of the copy its scrubs compared, its blocks they found bad (unreadable or
	// outvoted) and the bytes repaired onto it; LastScrub is when the volume's last scrub ended
	// (zero before the first).
	ScrubbedBytes, ScrubMismatches, ScrubRepairedBytes int64
	LastScrub                                          time.Time
}

// ReplicationSource returns the copies of every replicated volume this node coordinates.
type ReplicationSource func() []ReplicaStat

// ReplicationCollector is a prometheus.Collector over the replicated volumes a
// ReplicationSource reports. Like Collector it holds no state: a volume closed since the last
// scrape disappears from the next one.
type ReplicationCollector struct {
	source                                                  ReplicationSource
	inSync, catchingUp, dirty, generation, synced, compared *prometheus.Desc
	scrubbed, mismatches, repaired, lastScrub               *prometheus.Desc
}

var _ prometheus.Collector = (*ReplicationCollector)(nil)

// NewReplicationCollector returns a collector reading source on every scrape.
func NewReplicationCollector(source ReplicationSource) *ReplicationCollector {
	labels := []string{"volume", "store", "node"}
	return &ReplicationCollector{
		source:     source,
		inSync:     prometheus.NewDesc("cobalt_replica_in_sync", "1 while the copy holds every acknowledged write of its volume.", labels, nil),
		catchingUp: prometheus.NewDesc("cobalt_replica_catching_up", "1 while the copy misses writes (being resynced or rebuilt, or unreachable).", labels, nil),
		dirty:      prometheus.NewDesc("cobalt_replica_dirty_bytes", "Bytes the copy misses according to the dirty-region log (replica lag).", labels, nil),
		generation: prometheus.NewDesc("cobalt_replica_generation", "Attachment generation the volume is coordinated at.", []string{"volume"}, nil),
		synced:     prometheus.NewDesc("cobalt_replica_synced_bytes_total", "Bytes copied onto the copy by rebuild, resync or repair since its volume was opened here.", append(labels, "kind"), nil),
		compared:   prometheus.NewDesc("cobalt_replica_compared_bytes_total", "Bytes of the copy compared by checksum with another copy since its volume was opened here.", labels, nil),
		scrubbed:   prometheus.NewDesc("cobalt_replica_scrubbed_bytes_total", "Bytes of the copy its volume's scrubs compared since the volume was opened here.", labels, nil),
		mismatches: prometheus.NewDesc("cobalt_replica_scrub_mismatches_total", "Blocks of the copy scrubs found bad (unreadable, or outvoted by the other copies).", labels, nil),
		repaired:   prometheus.NewDesc("cobalt_replica_scrub_repaired_bytes_total", "Bytes scrubs repaired onto the copy from a good copy.", labels, nil),
		lastScrub:  prometheus.NewDesc("cobalt_replica_last_scrub_timestamp_seconds", "When the volume's last scrub ended (Unix time; absent before the first).", []string{"volume"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *ReplicationCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.inSync, c.catchingUp, c.dirty, c.generation, c.synced, c.compared, c.scrubbed, c.mismatches, c.repaired, c.lastScrub} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *ReplicationCollector) Collect(ch chan<- prometheus.Metric) {
	gens, scrubs := map[string]uint64{}, map[string]time.Time{}
	for _, s := range c.source() {
		l := []string{s.Volume, s.Store, s.Node}
		ch <- prometheus.MustNewConstMetric(c.inSync, prometheus.GaugeValue, boolValue(s.State == "InSync"), l...)
		ch <- prometheus.MustNewConstMetric(c.catchingUp, prometheus.GaugeValue, boolValue(s.State != "InSync"), l...)
		ch <- prometheus.MustNewConstMetric(c.dirty, prometheus.GaugeValue, float64(s.DirtyBytes), l...)
		kinds := make([]string, 0, len(s.SyncedBytes))
		for k := range s.SyncedBytes {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for _, k := range kinds {
			ch <- prometheus.MustNewConstMetric(c.synced, prometheus.CounterValue, float64(s.SyncedBytes[k]), append(l, k)...)
		}
		ch <- prometheus.MustNewConstMetric(c.compared, prometheus.CounterValue, float64(s.ComparedBytes), l...)
		ch <- prometheus.MustNewConstMetric(c.scrubbed, prometheus.CounterValue, float64(s.ScrubbedBytes), l...)
		ch <- prometheus.MustNewConstMetric(c.mismatches, prometheus.CounterValue, float64(s.ScrubMismatches), l...)
		ch <- prometheus.MustNewConstMetric(c.repaired, prometheus.CounterValue, float64(s.ScrubRepairedBytes), l...)
		gens[s.Volume] = s.Generation
		if !s.LastScrub.IsZero() {
			scrubs[s.Volume] = s.LastScrub
		}
	}
	for v, g := range gens {
		ch <- prometheus.MustNewConstMetric(c.generation, prometheus.GaugeValue, float64(g), v)
	}
	for v, t := range scrubs {
		ch <- prometheus.MustNewConstMetric(c.lastScrub, prometheus.GaugeValue, float64(t.UnixNano())/1e9, v)
	}
}
