package store

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/cobaltstore/cobalt/storage-engine/alloc"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/cache"
	"github.com/cobaltstore/cobalt/storage-engine/kv"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// NewAllocatorFunc builds an allocator that manages device bytes [0, size) in units of unit bytes,
// all free. The store marks the label area and every referenced extent used at mount.
type NewAllocatorFunc func(size, unit int64) (alloc.Allocator, error)

// Options configure an open store. The zero value picks defaults.
type Options struct {
	// PreferDeferredSize: overwrites of already-allocated, unshared space smaller than this are
	// logged in the KV and applied in place later instead of copy-on-write. 0 picks the default
	// (64 KiB on rotational devices, 32 KiB otherwise); negative disables deferred writes.
	PreferDeferredSize int
	// DeferredBatch is the number of pending deferred blocks that wakes the deferred flusher
	// (it also runs every DeferredInterval). 0 picks 256.
	DeferredBatch int
	// DeferredInterval is how often the deferred flusher runs when fewer than DeferredBatch blocks
	// are pending; 0 picks 20ms.
	DeferredInterval time.Duration
	// CacheType is the onode cache policy: "2q" (default) or "lru".
	CacheType string
	// CacheShards: 0 = auto (8 on SSD, 5 on HDD).
	CacheShards int
	// MemoryTarget bounds the memory of caches in bytes: the Tuner splits it among the onode
	// cache, the buffer cache and pebble's block cache. 0 picks 80% of the cgroup memory limit
	// when there is one, else 256 MiB.
	MemoryTarget int64
	// DisableBufferedReads stops caching data read from the device (cold-read benchmarks).
	DisableBufferedReads bool
	// BufferedWrites keeps written data in the buffer cache: it is cached (state writing) when
	// its transaction is published and stays cached (clean) once the commit is durable, unless
	// written with Transaction.WriteNoCache. Off by default (BlueStore's
	// bluestore_default_buffered_write): a commit then drops the changed objects' cached data.
	BufferedWrites bool
	// OnodeCache, if set, replaces the built-in onode cache.
	OnodeCache OnodeCache
	// MaxGroupTxns bounds how many transactions share one KV sync; 0 picks 128.
	MaxGroupTxns int
	// FS holds the metadata database of a store whose metadata is in a directory; nil means the
	// OS filesystem. Stores with their metadata on the device ignore it.
	FS vfs.FS
	// MetadataDevice is the metadata device of a store made with MkfsOptions.MetadataDevice:
	// Open refuses such a store without it, a device that is not that store's metadata device,
	// and a MetadataDevice for a store that has none. The caller keeps ownership of it and closes
	// it after Close.
	MetadataDevice blockdev.Device
	// NewAllocator builds the space allocator; nil picks the default extent allocator.
	NewAllocator NewAllocatorFunc
	// Logger receives the metadata database's log lines and its background failures; nil
	// discards them (kv.Options.Logger).
	Logger *slog.Logger
	// KVEvents, if set, is called for each failure or slowdown of the metadata database's
	// background work, from pebble's goroutines: it must not block (kv.Options.Events).
	KVEvents func(kv.Event)
	// DiskSlowThreshold is how long a metadata disk operation may take before it is reported
	// slow: 0 picks kv.DefaultDiskSlowThreshold, negative turns the check off.
	DiskSlowThreshold time.Duration

	// verifyShards makes every commit check that the extent shards it does not rewrite are
	// unchanged (tests set it; see verifyCleanShards).
	verifyShards bool
	// metaGrowSlack and metaGrowStep make the metadata space grow earlier and in other steps
	// than metagrow.go's defaults (tests: growth under power cuts).
	metaGrowSlack, metaGrowStep int64
}

// MkfsOptions configure Mkfs.
type MkfsOptions struct {
	// Force formats a device even if it carries a filesystem or another store's signature.
	Force bool
	// MinAllocSize is the allocation unit (a power of two, a multiple of ChecksumBlockSize);
	// 0 picks 4096.
	MinAllocSize int
	// ChecksumBlockSize is the size covered by one crc32c (a power of two, a multiple of the
	// device block size); 0 picks 4096.
	ChecksumBlockSize int
	// UUID, if set, is the store UUID (canonical 8-4-4-4-12 hex form); otherwise a random one.
	UUID string
	// ClusterID, if not zero, is recorded in the label as the cluster the store belongs to
	// (label version 3); the node daemon gives its StorageCluster's UID. Zero writes a label that
	// names no cluster (development stores, benchmarks).
	ClusterID [16]byte
	// FS holds the metadata database when it is made in a directory (a non-empty dbDir); nil
	// means the OS filesystem.
	FS vfs.FS
	// MetadataSize is the metadata region's length when the metadata goes on the device (an
	// empty dbDir); 0 picks DefaultMetadataSize, or with a MetadataDevice all of that device after
	// its label. It is rounded down to 64 KiB.
	MetadataSize int64
	// MetadataDevice, if set, holds the metadata instead of the data device (a faster device, as
	// BlueStore's block.db; dbDir must be empty): Mkfs gives it a label of its own, naming the
	// store, and its region; the store then opens only with it (Options.MetadataDevice). Mkfs
	// refuses it when it carries a signature, unless Force. The caller keeps ownership of it.
	MetadataDevice blockdev.Device
}

// labelReserve is how much of the device start is kept for the label (rounded up to the
// allocation unit).
const labelReserve = 64 << 10

func (o Options) withDefaults(rotational bool) (Options, error) {
	if o.PreferDeferredSize == 0 {
		o.PreferDeferredSize = 32 << 10
		if rotational {
			o.PreferDeferredSize = 64 << 10
		}
	}
	if o.DeferredBatch <= 0 {
		o.DeferredBatch = 256
	}
	if o.DeferredInterval <= 0 {
		o.DeferredInterval = 20 * time.Millisecond
	}
	if o.CacheType == "" {
		o.CacheType = "2q"
	}
	if o.CacheType != "2q" && o.CacheType != "lru" {
		return o, fmt.Errorf("cache type %q (want 2q or lru): %w", o.CacheType, ErrInvalid)
	}
	if o.CacheShards < 0 {
		return o, fmt.Errorf("cache shards %d: %w", o.CacheShards, ErrInvalid)
	}
	if o.CacheShards == 0 {
		o.CacheShards = 8
		if rotational {
			o.CacheShards = 5
		}
	}
	if o.MemoryTarget <= 0 {
		t, err := DefaultMemoryTarget()
		if err != nil {
			return o, err
		}
		o.MemoryTarget = t
	}
	if o.MaxGroupTxns <= 0 {
		o.MaxGroupTxns = 128
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	return o, nil
}

func pow2(v int) bool { return v > 0 && v&(v-1) == 0 }

func (o MkfsOptions) withDefaults(devBlock int) (MkfsOptions, error) {
	if o.MinAllocSize == 0 {
		o.MinAllocSize = 4096
	}
	if o.ChecksumBlockSize == 0 {
		o.ChecksumBlockSize = 4096
	}
	switch {
	case !pow2(o.ChecksumBlockSize) || o.ChecksumBlockSize < devBlock:
		return o, fmt.Errorf("checksum block size %d must be a power of two >= device block size %d: %w", o.ChecksumBlockSize, devBlock, ErrInvalid)
	case !pow2(o.MinAllocSize) || o.MinAllocSize%o.ChecksumBlockSize != 0 || o.MinAllocSize > 16<<20:
		return o, fmt.Errorf("min alloc size %d must be a power of two, a multiple of the checksum block size %d and at most 16 MiB: %w", o.MinAllocSize, o.ChecksumBlockSize, ErrInvalid)
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	return o, nil
}

// DefaultMemoryTarget is the memory target of a store opened with Options.MemoryTarget 0: 80% of
// the cgroup memory limit when there is one, else 256 MiB.
func DefaultMemoryTarget() (int64, error) {
	t, _, err := cache.DefaultMemoryTarget(os.DirFS("/"), 256<<20)
	if err != nil {
		return 0, fmt.Errorf("memory target: %w", err)
	}
	return t, nil
}
