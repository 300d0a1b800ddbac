package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Source returns the current snapshot of every mounted store.
type Source func() []StoreSnapshot

// Collector is a prometheus.Collector over the stores a Source reports.
type Collector struct {
	source Source
	descs  map[string]*prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

type metricDef struct {
	name, help string
	kind       prometheus.ValueType
	extra      []string // labels beyond "store"
}

var defs = []metricDef{
	{"cobalt_store_capacity_bytes", "Data capacity of the store.", prometheus.GaugeValue, nil},
	{"cobalt_store_used_bytes", "Space allocated on the store.", prometheus.GaugeValue, nil},
	{"cobalt_store_commits_total", "Transactions committed.", prometheus.CounterValue, nil},
	{"cobalt_store_commit_errors_total", "Transactions that failed.", prometheus.CounterValue, nil},
	{"cobalt_store_ops_total", "Operations in committed transactions.", prometheus.CounterValue, nil},
	{"cobalt_store_written_bytes_total", "Data bytes written by committed transactions.", prometheus.CounterValue, nil},
	{"cobalt_store_reads_total", "Object reads.", prometheus.CounterValue, nil},
	{"cobalt_store_read_errors_total", "Object reads that failed (device errors included).", prometheus.CounterValue, nil},
	{"cobalt_store_read_bytes_total", "Bytes read.", prometheus.CounterValue, nil},
	{"cobalt_store_corruptions_total", "Checksum mismatches detected.", prometheus.CounterValue, nil},
	{"cobalt_store_latency_seconds", "Engine latency quantiles by operation (commit, read, kv_sync).", prometheus.GaugeValue, []string{"op", "quantile"}},
	{"cobalt_store_commit_groups_total", "Commit groups (one device flush and KV sync each).", prometheus.CounterValue, nil},
	{"cobalt_store_commit_group_txns_avg", "Average transactions per commit group.", prometheus.GaugeValue, nil},
	{"cobalt_store_deferred_queue_blocks", "Deferred writes waiting to be applied in place.", prometheus.GaugeValue, nil},
	{"cobalt_store_deferred_queue_bytes", "Bytes of deferred writes waiting.", prometheus.GaugeValue, nil},
	{"cobalt_store_deferred_errors_total", "Deferred flusher cycles that failed.", prometheus.CounterValue, nil},
	{"cobalt_store_alloc_free_bytes", "Free space in the allocator.", prometheus.GaugeValue, nil},
	{"cobalt_store_alloc_fragmentation_ratio", "Free-space fragmentation (0 = one extent, 1 = unit-sized pieces).", prometheus.GaugeValue, nil},
	{"cobalt_store_alloc_errors_total", "Releases the allocator refused.", prometheus.CounterValue, nil},
	{"cobalt_store_cached_onodes", "Onodes in the cache.", prometheus.GaugeValue, nil},
	{"cobalt_store_cache_hits_total", "Cache hits per shard.", prometheus.CounterValue, []string{"cache", "shard"}},
	{"cobalt_store_cache_misses_total", "Cache misses per shard.", prometheus.CounterValue, []string{"cache", "shard"}},
	{"cobalt_store_cache_bytes", "Memory held by the cache per shard.", prometheus.GaugeValue, []string{"cache", "shard"}},
	{"cobalt_store_metadata_background_errors_total", "Failed background jobs (flushes, compactions) of the metadata database.", prometheus.CounterValue, nil},
	{"cobalt_store_metadata_disk_slow_total", "Reports of a metadata disk operation running longer than the disk-slow threshold.", prometheus.CounterValue, nil},
	{"cobalt_store_metadata_write_stalls_total", "Write stalls of the metadata database.", prometheus.CounterValue, nil},
	{"cobalt_store_metadata_write_stalled", "1 while the metadata database's writes are stalled.", prometheus.GaugeValue, nil},
	{"cobalt_store_metadata_syncs_total", "Syncs of the metadata file system on the device (WAL syncs, one per commit group, and the metadata database's flushes and compactions); none with the metadata in a host directory.", prometheus.CounterValue, nil},
	{"cobalt_store_metadata_sync_seconds_total", "Time the metadata syncs spent writing the device, flushing it, and journaling a new size, by phase (write, flush, journal).", prometheus.CounterValue, []string{"phase"}},
	{"cobalt_store_health", "1 for the engine's current health state (OK, Degraded, Failed), 0 for the others.", prometheus.GaugeValue, []string{"state"}},
}

// NewCollector returns a collector reading source on every scrape.
func NewCollector(source Source) *Collector {
	c := &Collector{source: source, descs: make(map[string]*prometheus.Desc, len(defs))}
	for _, d := range defs {
		c.descs[d.name] = prometheus.NewDesc(d.name, d.help, append([]string{"store", "device"}, d.extra...), nil)
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.source() {
		emit := func(name string, v float64, extra ...string) {
			def := c.descs[name]
			kind := prometheus.GaugeValue
			for _, d := range defs {
				if d.name == name {
					kind = d.kind
				}
			}
			ch <- prometheus.MustNewConstMetric(def, kind, v, append([]string{s.UUID, s.DevicePath}, extra...)...)
		}
		emit("cobalt_store_capacity_bytes", float64(s.TotalBytes))
		emit("cobalt_store_used_bytes", float64(s.UsedBytes))
		emit("cobalt_store_commits_total", float64(s.Commits))
		emit("cobalt_store_commit_errors_total", float64(s.CommitErrors))
		emit("cobalt_store_ops_total", float64(s.Ops))
		emit("cobalt_store_written_bytes_total", float64(s.BytesWritten))
		emit("cobalt_store_reads_total", float64(s.Reads))
		emit("cobalt_store_read_errors_total", float64(s.ReadErrors))
		emit("cobalt_store_read_bytes_total", float64(s.BytesRead))
		emit("cobalt_store_corruptions_total", float64(s.Corruptions))
		for op, l := range map[string]Latency{"commit": s.CommitLatency, "read": s.ReadLatency, "kv_sync": s.KVSync} {
			emit("cobalt_store_latency_seconds", l.P50.Seconds(), op, "0.5")
			emit("cobalt_store_latency_seconds", l.P99.Seconds(), op, "0.99")
			emit("cobalt_store_latency_seconds", l.Max.Seconds(), op, "1")
		}
		emit("cobalt_store_commit_groups_total", float64(s.CommitGroups))
		emit("cobalt_store_commit_group_txns_avg", s.CommitGroupTxnsAvg)
		emit("cobalt_store_deferred_queue_blocks", float64(s.DeferredQueue))
		emit("cobalt_store_deferred_queue_bytes", float64(s.DeferredQueueBytes))
		emit("cobalt_store_deferred_errors_total", float64(s.DeferredErrors))
		emit("cobalt_store_alloc_free_bytes", float64(s.AllocFree))
		emit("cobalt_store_alloc_fragmentation_ratio", s.AllocFragmentation)
		emit("cobalt_store_alloc_errors_total", float64(s.AllocErrors))
		emit("cobalt_store_cached_onodes", float64(s.CachedOnodes))
		for _, sh := range s.CacheShards {
			shard := strconv.Itoa(sh.Index)
			emit("cobalt_store_cache_hits_total", float64(sh.Hits), sh.Cache, shard)
			emit("cobalt_store_cache_misses_total", float64(sh.Misses), sh.Cache, shard)
			emit("cobalt_store_cache_bytes", float64(sh.Bytes), sh.Cache, shard)
		}
		emit("cobalt_store_metadata_background_errors_total", float64(s.MetadataBackgroundErrors))
		emit("cobalt_store_metadata_disk_slow_total", float64(s.MetadataDiskSlow))
		emit("cobalt_store_metadata_write_stalls_total", float64(s.MetadataWriteStalls))
		emit("cobalt_store_metadata_write_stalled", boolValue(s.MetadataWriteStalled))
		emit("cobalt_store_metadata_syncs_total", float64(s.MetadataSyncs))
		for phase, d := range map[string]time.Duration{"write": s.MetadataSyncWrite, "flush": s.MetadataSyncFlush, "journal": s.MetadataSyncJournal} {
			emit("cobalt_store_metadata_sync_seconds_total", d.Seconds(), phase)
		}
		for _, state := range [...]string{HealthOK, HealthDegraded, HealthFailed} {
			emit("cobalt_store_health", boolValue(s.Health == state), state)
		}
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
