package metrics

import "time"

// Latency summarizes a latency distribution.
type Latency struct {
	Count     int64
	Mean, P50 time.Duration
	P99, Max  time.Duration
}

// Shard is one cache shard's counters.
type Shard struct {
	// Cache names the cache the shard belongs to ("onode" or "buffer").
	Cache        string
	Index        int
	Hits, Misses int64
	Bytes        int64
}

// StoreSnapshot is what a mounted store reports, in the daemon's vocabulary (package engine
// fills it from the storage engine's metrics struct).
type StoreSnapshot struct {
	UUID       string
	DevicePath string

	TotalBytes, UsedBytes int64

	// MetadataOnDevice is set when the metadata database is in a region of the device or of its
	// separate metadata device (the store mounts from its devices alone); MetadataDevice is that
	// separate device's path ("" when none); MetadataLocation says where the metadata is, for
	// people: "device region [offset, +length)", "metadata device region [offset, +length) on
	// PATH" or "directory PATH".
	MetadataOnDevice bool
	MetadataDevice   string
	MetadataLocation string

	Commits, CommitErrors, Ops, BytesWritten int64
	Reads, ReadErrors, BytesRead             int64
	Corruptions                              int64
	CommitLatency, ReadLatency, KVSync       Latency
	CommitGroups                             int64
	CommitGroupTxnsAvg                       float64

	DeferredQueue, DeferredQueueBytes int64
	DeferredErrors                    int64

	AllocFree          int64
	AllocFragmentation float64
	AllocErrors        int64

	CacheType    string
	CachedOnodes int64
	CacheShards  []Shard

	// Health is the engine's verdict (HealthOK, HealthDegraded or HealthFailed); HealthReason and HealthMessage say
	// why when it is not HealthOK.
	Health                      string
	HealthReason, HealthMessage string
	// The metadata database's background trouble since the store was mounted.
	MetadataBackgroundErrors int64
	MetadataDiskSlow         int64
	MetadataWriteStalls      int64
	MetadataWriteStalled     bool
	// MetadataSyncs counts the syncs of the metadata file system on the device (pebble's WAL
	// syncs, one per commit group, and its flushes' and compactions'), and the other three the
	// time they spent writing the device, flushing it, and journaling a new size; all zero with
	// the metadata in a host directory.
	MetadataSyncs                                             int64
	MetadataSyncWrite, MetadataSyncFlush, MetadataSyncJournal time.Duration
}

// The engine health states a StoreSnapshot reports, best first; each is one cobalt_store_health
// series.
const (
	HealthOK       = "OK"
	HealthDegraded = "Degraded"
	HealthFailed   = "Failed"
)

// HealthReasonDeviceFailed is the HealthReason of a store whose device returned an I/O error
// (HealthFailed): the daemon no longer serves it (its Store reports the device not used).
const HealthReasonDeviceFailed = "DeviceFailed"

// CacheTotals sums the shards.
func (s StoreSnapshot) CacheTotals() Shard {
	var t Shard
	for _, sh := range s.CacheShards {
		t.Hits += sh.Hits
		t.Misses += sh.Misses
		t.Bytes += sh.Bytes
	}
	return t
}
