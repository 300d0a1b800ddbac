package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/cobaltstore/cobalt/node-daemon/metrics"
	"github.com/cobaltstore/cobalt/node-daemon/objstore"
	"github.com/cobaltstore/cobalt/storage-engine/cache"
	"github.com/cobaltstore/cobalt/storage-engine/store"
)

// Mounted is a mounted store with its device (and separate metadata device, if any); it
// implements app.MountedStore.
type Mounted struct {
	st  *store.Store
	dev *watchedDevice
	// metaDev is the separate metadata device (nil when none), opened from metaDevPath.
	metaDev     *watchedDevice
	metaDevPath string
	cacheType   string
	// gc is the process's collector budget the store counts in until Close (nil: none).
	gc        *GCBudget
	closeOnce sync.Once
}

// Engine returns the underlying store (for fsck in tests and tools).
func (m *Mounted) Engine() *store.Store { return m.st }

// UUID implements objstore.Store.
func (m *Mounted) UUID() string { return m.st.UUID() }

// Commit implements objstore.Store: objstore.Apply validates the ops and builds the engine's
// transaction through txnBuilder (txn.go); the engine applies it atomically.
func (m *Mounted) Commit(ctx context.Context, ops []objstore.Op) error {
	b := txnBuilder{txn: store.NewTransaction()}
	if err := objstore.Apply(ops, b); err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	return wrap(m.st.Commit(ctx, b.txn))
}

// Read implements objstore.Store.
func (m *Mounted) Read(ctx context.Context, c, o string, off, length int64) ([]byte, error) {
	return m.read(ctx, c, o, off, length, m.st.Read)
}

// ReadNoCache implements objstore.NoCacheReader with the engine's ReadNoCache.
func (m *Mounted) ReadNoCache(ctx context.Context, c, o string, off, length int64) ([]byte, error) {
	return m.read(ctx, c, o, off, length, m.st.ReadNoCache)
}

var _ objstore.NoCacheReader = (*Mounted)(nil)

func (m *Mounted) read(ctx context.Context, c, o string, off, length int64, read func(context.Context, string, string, uint64, uint64) ([]byte, error)) ([]byte, error) {
	if err := objstore.ValidateRange(off, length); err != nil {
		return nil, fmt.Errorf("engine: read: %w", err)
	}
	if length == 0 {
		// The engine reads to the end for length 0; the daemon's contract is "up to length".
		if _, err := m.st.Stat(ctx, c, o); err != nil {
			return nil, wrap(err)
		}
		return []byte{}, nil
	}
	data, err := read(ctx, c, o, uint64(off), uint64(length))
	return data, wrap(err)
}

// ReadInto implements objstore.IntoReader with the engine's ReadInto: whole blocks land in p
// itself when p is 4 KiB-aligned.
func (m *Mounted) ReadInto(ctx context.Context, c, o string, off int64, p []byte) (int, error) {
	return m.readInto(ctx, c, o, off, p, m.st.ReadInto)
}

// ReadNoCacheInto implements objstore.NoCacheIntoReader with the engine's ReadNoCacheInto.
func (m *Mounted) ReadNoCacheInto(ctx context.Context, c, o string, off int64, p []byte) (int, error) {
	return m.readInto(ctx, c, o, off, p, m.st.ReadNoCacheInto)
}

var (
	_ objstore.IntoReader        = (*Mounted)(nil)
	_ objstore.NoCacheIntoReader = (*Mounted)(nil)
)

func (m *Mounted) readInto(ctx context.Context, c, o string, off int64, p []byte, read func(context.Context, string, string, uint64, []byte) (int, error)) (int, error) {
	if err := objstore.ValidateRange(off, int64(len(p))); err != nil {
		return 0, fmt.Errorf("engine: read: %w", err)
	}
	n, err := read(ctx, c, o, uint64(off), p)
	return n, wrap(err)
}

// Stat implements objstore.Store.
func (m *Mounted) Stat(ctx context.Context, c, o string) (objstore.ObjectStat, error) {
	st, err := m.st.Stat(ctx, c, o)
	if err != nil {
		return objstore.ObjectStat{}, wrap(err)
	}
	return objstore.ObjectStat{Size: int64(st.Size)}, nil
}

// GetAttr implements objstore.Store.
func (m *Mounted) GetAttr(ctx context.Context, c, o, name string) ([]byte, error) {
	if err := objstore.ValidateAttrName(name); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	v, err := m.st.GetAttr(ctx, c, o, name)
	return v, wrap(err)
}

// GetAttrs implements objstore.Store.
func (m *Mounted) GetAttrs(ctx context.Context, c, o string) (map[string][]byte, error) {
	v, err := m.st.GetAttrs(ctx, c, o)
	return v, wrap(err)
}

// OmapGet implements objstore.Store.
func (m *Mounted) OmapGet(ctx context.Context, c, o string, keys []string) (map[string][]byte, error) {
	v, err := m.st.OmapGet(ctx, c, o, keys...)
	return v, wrap(err)
}

// OmapGetHeader implements objstore.Store.
func (m *Mounted) OmapGetHeader(ctx context.Context, c, o string) ([]byte, error) {
	v, err := m.st.OmapGetHeader(ctx, c, o)
	return v, wrap(err)
}

// OmapIterate implements objstore.Store: the engine starts at keys >= start, the daemon after
// startAfter; values are copied because the engine's are only valid during the callback.
func (m *Mounted) OmapIterate(ctx context.Context, c, o, startAfter string, fn func(string, []byte) bool) error {
	return wrap(m.st.OmapIterate(ctx, c, o, startAfter, func(k string, v []byte) bool {
		if k == startAfter {
			return true
		}
		return fn(k, append([]byte(nil), v...))
	}))
}

// ListCollections implements objstore.Store.
func (m *Mounted) ListCollections(ctx context.Context) ([]string, error) {
	v, err := m.st.ListCollections(ctx)
	return v, wrap(err)
}

// ListObjects implements objstore.Store.
func (m *Mounted) ListObjects(ctx context.Context, c, start string, limit int) ([]string, string, error) {
	if err := objstore.ValidateListLimit(limit); err != nil {
		return nil, "", fmt.Errorf("engine: %w", err) // the engine would list everything
	}
	objs, next, err := m.st.ListObjects(ctx, c, start, limit)
	return objs, next, wrap(err)
}

// Statfs implements objstore.Store.
func (m *Mounted) Statfs(context.Context) (objstore.Statfs, error) {
	fs := m.st.Statfs()
	return objstore.Statfs{Total: int64(fs.Total), Used: int64(fs.Used), Available: int64(fs.Available)}, nil
}

// CollectionUsage implements objstore.Store with the engine's reference counts: space shared
// with clones in other collections is not Exclusive.
func (m *Mounted) CollectionUsage(ctx context.Context, c string) (objstore.CollectionUsage, error) {
	u, err := m.st.CollectionUsage(ctx, c)
	if err != nil {
		return objstore.CollectionUsage{}, wrap(err)
	}
	return objstore.CollectionUsage{Objects: int64(u.Objects), Referenced: int64(u.Referenced), Exclusive: int64(u.Exclusive)}, nil
}

// Snapshot implements app.MountedStore.
func (m *Mounted) Snapshot() metrics.StoreSnapshot {
	fs := m.st.Statfs()
	mt := m.st.Metrics()
	lat := func(l store.LatencySummary) metrics.Latency {
		return metrics.Latency{Count: l.Count, Mean: l.Mean, P50: l.P50, P99: l.P99, Max: l.Max}
	}
	var shards []metrics.Shard
	for name, cm := range map[string]cache.Metrics{"onode": mt.Cache.Onodes, "buffer": mt.Cache.Buffers} {
		for i, sh := range cm.Shards {
			shards = append(shards, metrics.Shard{Cache: name, Index: i, Hits: sh.Hits, Misses: sh.Misses, Bytes: sh.Bytes})
		}
	}
	sort.Slice(shards, func(i, j int) bool {
		if shards[i].Cache != shards[j].Cache {
			return shards[i].Cache > shards[j].Cache // onode first
		}
		return shards[i].Index < shards[j].Index
	})
	h := m.st.Health()
	health, reason, message := snapshotHealth(h, m.deviceFailure())
	return metrics.StoreSnapshot{
		UUID:               m.st.UUID(),
		TotalBytes:         int64(fs.Total),
		MetadataOnDevice:   m.st.MetadataOnDevice(),
		MetadataLocation:   m.metadataLocation(),
		MetadataDevice:     m.metaDevPath,
		UsedBytes:          int64(fs.Used),
		Commits:            mt.Commits,
		CommitErrors:       mt.CommitErrors,
		Ops:                mt.Ops,
		BytesWritten:       mt.BytesWritten,
		Reads:              mt.Reads,
		ReadErrors:         mt.ReadErrors,
		BytesRead:          mt.BytesRead,
		Corruptions:        mt.Corruptions,
		CommitLatency:      lat(mt.CommitLatency),
		ReadLatency:        lat(mt.ReadLatency),
		KVSync:             lat(mt.KVSyncLatency),
		CommitGroups:       mt.CommitGroups,
		CommitGroupTxnsAvg: mt.CommitGroupTxnsAvg,
		DeferredQueue:      int64(mt.DeferredQueue),
		DeferredQueueBytes: mt.DeferredQueueBytes,
		DeferredErrors:     mt.DeferredErrors,
		AllocFree:          mt.AllocFree,
		AllocFragmentation: mt.AllocFragmentation,
		AllocErrors:        mt.AllocErrors,
		CacheType:          m.cacheType,
		CachedOnodes:       int64(mt.CachedOnodes),
		CacheShards:        shards,

		Health:                   health,
		HealthReason:             reason,
		HealthMessage:            message,
		MetadataBackgroundErrors: int64(h.KV.BackgroundErrors),
		MetadataDiskSlow:         int64(h.KV.DiskSlow),
		MetadataWriteStalls:      int64(h.KV.WriteStalls),
		MetadataWriteStalled:     h.KV.Stalled,
		MetadataSyncs:            mt.MetaSync.Syncs,
		MetadataSyncWrite:        mt.MetaSync.Write,
		MetadataSyncFlush:        mt.MetaSync.Flush,
		MetadataSyncJournal:      mt.MetaSync.Journal,
	}
}

// metadataLocation is the store's MetadataLocation, naming the separate metadata device's path
// when there is one.
func (m *Mounted) metadataLocation() string {
	if m.metaDevPath == "" {
		return m.st.MetadataLocation()
	}
	return m.st.MetadataLocation() + " on " + m.metaDevPath
}

// deviceFailure returns the first I/O error of the store's device, or else of its metadata
// device (described), or nil.
func (m *Mounted) deviceFailure() error {
	if err := m.dev.failed(); err != nil {
		return err
	}
	if m.metaDev != nil {
		if err := m.metaDev.failed(); err != nil {
			return fmt.Errorf("metadata device %s: %w", m.metaDevPath, err)
		}
	}
	return nil
}

// snapshotHealth is a store's health for its snapshot, from the engine's verdict h and the first
// I/O error of its devices (nil if none). A device error makes it Failed with reason
// metrics.HealthReasonDeviceFailed whatever the engine says (it failed only what met the error),
// and so does an engine whose metadata database stopped on a failed device (the failure may have
// come from a host directory, which no watched device sees): the node daemon retires such stores.
func snapshotHealth(h store.Health, devErr error) (health, reason, message string) {
	switch {
	case devErr != nil:
		message = devErr.Error()
		if h.State != store.HealthOK {
			message += "; the engine also reports " + string(h.State) + ": " + h.Message
		}
		return metrics.HealthFailed, metrics.HealthReasonDeviceFailed, message
	case h.Reason == store.ReasonMetadataDeviceFailed:
		return metrics.HealthFailed, metrics.HealthReasonDeviceFailed, h.Message
	}
	return string(h.State), h.Reason, h.Message
}

// Close implements app.MountedStore: it unmounts the store cleanly, then closes the device and
// the metadata device.
func (m *Mounted) Close() error {
	stErr := m.st.Close()
	err := errors.Join(stErr, m.dev.Close())
	if m.metaDev != nil {
		err = errors.Join(err, m.metaDev.Close())
	}
	if m.gc != nil {
		m.closeOnce.Do(func() { m.gc.closed(m.st.MemoryTarget(), stErr) })
	}
	return err
}
