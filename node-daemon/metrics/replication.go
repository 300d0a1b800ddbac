package metrics

import (
	"sort"

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
}

// ReplicationSource returns the copies of every replicated volume this node coordinates.
type ReplicationSource func() []ReplicaStat

// ReplicationCollector is a prometheus.Collector over the replicated volumes a
// ReplicationSource reports. Like Collector it holds no state: a volume closed since the last
// scrape disappears from the next one.
type ReplicationCollector struct {
	source                                                  ReplicationSource
	inSync, catchingUp, dirty, generation, synced, compared *prometheus.Desc
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
	}
}

// Describe implements prometheus.Collector.
func (c *ReplicationCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.inSync, c.catchingUp, c.dirty, c.generation, c.synced, c.compared} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *ReplicationCollector) Collect(ch chan<- prometheus.Metric) {
	gens := map[string]uint64{}
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
		gens[s.Volume] = s.Generation
	}
	for v, g := range gens {
		ch <- prometheus.MustNewConstMetric(c.generation, prometheus.GaugeValue, float64(g), v)
	}
}
