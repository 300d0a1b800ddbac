package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cobaltstore/cobalt/storage-engine/alloc"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/kv"
	"github.com/cobaltstore/cobalt/storage-engine/onode"
	"github.com/cockroachdb/pebble/v2"
)

// Store is an open object store. All methods are safe for concurrent use.
type Store struct {
	dev  blockdev.Device
	db   *kv.DB
	meta metaLocation
	opts Options

	uuid      string
	devSize   uint64
	unit      uint64 // min_alloc_size
	csumBlock uint64
	shardSize uint64 // logical span of an extent-map shard (onode.ShardSize)
	dataStart uint64

	alloc alloc.Allocator // internally synchronized
	cache OnodeCache      // internally synchronized
	// caches holds the sharded onode cache behind cache, the data buffer cache and the memory
	// tuner (caches.go).
	caches *storeCaches

	// gate orders readers against publication: readers hold it shared from onode lookup to the end
	// of their device reads; the committer holds it exclusively while it publishes a group and
	// releases the space that group freed, so no reader ever reads space that was reallocated.
	gate sync.RWMutex
	// pub is the published (committed) in-memory state. Written only by the committer while it
	// holds gate exclusively; read under gate (shared) or by the committer.
	pub struct {
		colls  map[string]struct{}
		shared map[uint64]uint32 // allocation unit -> reference count, only for counts >= 2
		stats  kv.Stats
	}

	// growMu is held while data space moves to the metadata database (metagrow.go), and by fsck
	// (after commitMu and the groups' syncs), so fsck never sees space taken and not yet given.
	growMu sync.Mutex
	// growBlocked is the data space's free bytes plus one when growing the metadata last failed
	// for want of data space, 0 otherwise: until the data space has more free, commits do not try
	// again (metagrow.go). growAttempts counts the tries (tests).
	growBlocked, growAttempts atomic.Int64

	overlay *deferredOverlay
	// flushMu is held by the deferred flusher for a whole cycle (snapshot, device writes, flush, KV
	// delete, overlay trim), and by the committer when it frees space holding pending deferred
	// writes, so the flusher never writes into space that was freed and reallocated.
	flushMu sync.Mutex

	// commitMu is held while a commit group is staged, written and published (and by Fsck, which
	// needs metadata at rest). The fields below are used only under it.
	commitMu sync.Mutex
	nextNid  uint64
	nextSeq  uint64
	groupSeq uint64 // the last cacheSeq handed to a group (bufwrites.go)

	// life guards the queue against Close: Commit holds it shared while enqueuing.
	life   sync.RWMutex
	closed bool // REQUIRES: life
	// leave is life.RUnlock, bound once: enter returns it on every read-side call, and a method
	// value made there would be a heap allocation per call.
	leave func()
	queue chan *commitReq
	syncQ chan *syncItem // applied groups waiting for their WAL sync, in order
	// syncSlots holds one token per group between the committer taking its first transaction
	// and the syncer finishing it (at most maxSyncingGroups).
	syncSlots chan struct{}
	// inflight counts groups handed to the syncer and not yet finished.
	inflight sync.WaitGroup
	// durableSeq: every deferred record with a sequence number <= durableSeq is durable; the
	// flusher applies only those.
	durableSeq atomic.Uint64
	stopBG     chan struct{}
	kickDef    chan struct{}
	wg         sync.WaitGroup
	failErr    atomic.Pointer[error] // set when a KV commit failed: writes are refused

	// usage registers the CollectionUsage scans in progress (usage.go).
	usage usageScans
	hooks testHooks

	m metricsState
	// bounce holds the aligned buffers of reads that cannot land in the reader's memory
	// (bounce.go, read.go); set at mount, once the checksum block size is known.
	bounce *bouncePool
}

// Open mounts the store on dev. Its metadata is in the device region the label names, in the
// region of opts.MetadataDevice for a store made with a separate metadata device, or, for a store
// whose label names neither, in the host directory dbDir (ignored otherwise). Open checks the
// label against the superblock, loads the collections, replays deferred writes, rebuilds the allocator from the
// onodes, and starts the commit and deferred-write workers. The caller keeps ownership of dev and
// closes it after Close.
func Open(ctx context.Context, dev blockdev.Device, dbDir string, opts Options) (*Store, error) {
	opts, err := opts.withDefaults(dev.Rotational())
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if opts.NewAllocator == nil {
		opts.NewAllocator = defaultAllocator
	}
	label, err := blockdev.ReadLabel(dev)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	caches, err := newStoreCaches(opts)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	meta, err := openMetaLocation(dev, label, dbDir, opts.FS, opts.MetadataDevice)
	if err != nil {
		caches.close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	db, err := kv.Open(meta.dir, meta.kvOptions(kv.Options{
		Cache:             caches.kvCache,
		Logger:            opts.Logger,
		Events:            opts.KVEvents,
		DiskSlowThreshold: opts.DiskSlowThreshold,
	}))
	if err != nil {
		caches.close()
		return nil, errors.Join(fmt.Errorf("open store: %w", err), meta.close())
	}
	s := &Store{dev: dev, db: db, meta: meta, opts: opts, overlay: newDeferredOverlay()}
	s.leave = s.life.RUnlock
	s.caches, s.cache = caches, caches.onodeCache(opts)
	if err := s.unlessStuck(func() error { return s.mount(ctx, label) }); err != nil {
		if db.StuckErr() != nil { // the mount may still run: leave what it uses (stuck.go)
			return nil, errors.Join(fmt.Errorf("open store: %w", err), db.Close())
		}
		caches.close()
		return nil, errors.Join(fmt.Errorf("open store: %w", err), db.Close(), meta.close())
	}
	s.queue = make(chan *commitReq, 1024)
	s.stopBG = make(chan struct{})
	s.kickDef = make(chan struct{}, 1)
	s.syncQ = make(chan *syncItem, 64)
	s.syncSlots = make(chan struct{}, maxSyncingGroups)
	s.durableSeq.Store(s.nextSeq - 1)
	if s.meta.fs != nil && s.meta.separate == nil {
		s.meta.fs.SetGrower(s.growForAllocation)
	}
	s.wg.Add(4)
	go s.commitLoop()
	go s.syncLoop()
	go s.deferredLoop()
	go s.watchStuck()
	return s, nil
}

func (s *Store) mount(ctx context.Context, label blockdev.Label) error {
	sb, err := s.readSuper()
	if err != nil {
		return err
	}
	if sb.UUID != label.UUIDString() {
		return fmt.Errorf("device label is store %s but metadata is store %s: %w", label.UUIDString(), sb.UUID, ErrInvalid)
	}
	if uint64(s.dev.Size()) < sb.DeviceSize {
		return fmt.Errorf("device is %d bytes, store was made on %d: %w", s.dev.Size(), sb.DeviceSize, ErrInvalid)
	}
	if sb.ChecksumBlockSize%uint64(s.dev.BlockSize()) != 0 {
		return fmt.Errorf("checksum block %d is not a multiple of device block size %d: %w", sb.ChecksumBlockSize, s.dev.BlockSize(), ErrInvalid)
	}
	if sb.Format != FormatVersion {
		return fmt.Errorf("store metadata format %d, this build reads format %d (%s): %w", sb.Format, FormatVersion, formatHistory, ErrInvalid)
	}
	if label.MetaOnDevice() && uint64(label.MetaOffset+label.MetaLength) > sb.DataStart {
		return corruptMeta("metadata region [%d, +%d) reaches into the data space starting at %d", label.MetaOffset, label.MetaLength, sb.DataStart)
	}
	s.uuid, s.devSize, s.unit, s.csumBlock, s.dataStart = sb.UUID, sb.DeviceSize, sb.MinAllocSize, sb.ChecksumBlockSize, sb.DataStart
	s.shardSize = onode.ShardSize(s.unit)
	s.bounce = newBouncePool(int(s.csumBlock))
	s.nextNid = sb.NextNid
	if s.pub.colls, err = s.loadCollections(); err != nil {
		return err
	}
	if err := s.replayDeferred(ctx); err != nil {
		return err
	}
	a, err := s.opts.NewAllocator(int64(s.devSize), int64(s.unit))
	if err != nil {
		return fmt.Errorf("create allocator: %w", err)
	}
	s.alloc = a
	if err := a.MarkUsed(alloc.Extent{Offset: 0, Length: int64(s.dataStart)}); err != nil {
		return fmt.Errorf("reserve label area: %w", err)
	}
	for _, e := range s.metaSpace() {
		if e.Offset < int64(s.dataStart) || e.End() > int64(s.devSize) {
			return corruptMeta("metadata space [%d, +%d) is outside the data space [%d, %d)", e.Offset, e.Length, s.dataStart, s.devSize)
		}
		if err := a.MarkUsed(e); err != nil {
			return corruptMeta("metadata space [%d, +%d) cannot be marked used: %v", e.Offset, e.Length, err)
		}
	}
	scan, err := s.scanOnodes(ctx, nil)
	if err != nil {
		return err
	}
	if scan.maxNid >= s.nextNid {
		return corruptMeta("onode nid %d is not below the superblock's next nid %d", scan.maxNid, s.nextNid)
	}
	for _, r := range scan.refs.ranges() {
		if err := a.MarkUsed(alloc.Extent{Offset: int64(r.start), Length: int64(r.end - r.start)}); err != nil {
			return corruptMeta("referenced extent [%d, %d) cannot be marked used: %v", r.start, r.end, err)
		}
	}
	s.pub.shared = scan.refs.shared(s.unit)
	s.pub.stats = kv.Stats{Objects: scan.objects, LogicalBytes: scan.logicalBytes}
	return nil
}

func (s *Store) readSuper() (*kv.Superblock, error) {
	v, c, err := s.db.Get(kv.SuperKey())
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, fmt.Errorf("no superblock in metadata db (not made by mkfs?): %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read superblock: %w", err)
	}
	defer c.Close()
	sb, err := kv.DecodeSuperblock(v)
	if err != nil {
		return nil, corruptMeta("superblock: %v", err)
	}
	return sb, nil
}

func (s *Store) loadCollections() (map[string]struct{}, error) {
	lo, hi := kv.CollectionSpan()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, fmt.Errorf("list collections: %w", err)
	}
	colls := map[string]struct{}{}
	for ok := it.First(); ok; ok = it.Next() {
		c, err := kv.ParseCollectionKey(it.Key())
		if err != nil {
			return nil, errors.Join(corruptMeta("%v", err), it.Close())
		}
		if _, err := kv.DecodeCollection(it.Value()); err != nil {
			return nil, errors.Join(corruptMeta("collection %q: %v", c, err), it.Close())
		}
		colls[c] = struct{}{}
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("list collections: %w", err)
	}
	return colls, nil
}

// loadOnode returns the committed onode of k (nil if absent), from the cache or the KV.
func (s *Store) loadOnode(k OnodeKey) (*onode.Onode, error) {
	if o, ok := s.cache.Get(k); ok {
		return o, nil
	}
	// One iterator reads the onode record and its extent shards from one consistent view of the
	// KV, which a commit group may change in between two separate reads.
	it, err := s.db.NewIter(nil)
	if err != nil {
		return nil, fmt.Errorf("read onode %s/%s: %w", k.Collection, k.Object, err)
	}
	key := kv.OnodeKey(k.Collection, k.Object)
	if !it.SeekGE(key) || !bytes.Equal(it.Key(), key) {
		if err := it.Close(); err != nil {
			return nil, fmt.Errorf("read onode %s/%s: %w", k.Collection, k.Object, err)
		}
		return nil, nil
	}
	o, err := onode.Decode(it.Value())
	if err == nil {
		err = s.loadExtents(it, o)
	}
	if err == nil {
		err = s.checkGeometry(o)
	}
	if cerr := it.Close(); cerr != nil && err == nil {
		return nil, fmt.Errorf("read onode %s/%s: %w", k.Collection, k.Object, cerr)
	}
	if err != nil {
		return nil, &CorruptionError{Collection: k.Collection, Object: k.Object, Offset: -1, Phys: -1, Detail: err.Error()}
	}
	s.cache.Insert(k, o)
	return o, nil
}

// loadExtents reads the extent-map shards of o into o with it, an iterator whose bounds include
// them.
func (s *Store) loadExtents(it *pebble.Iterator, o *onode.Onode) error {
	lo, hi := kv.ExtentShardSpan(o.Nid)
	for ok := it.SeekGE(lo); ok && bytes.Compare(it.Key(), hi) < 0; ok = it.Next() {
		_, shard, err := kv.ParseExtentShardKey(it.Key())
		if err != nil {
			return err
		}
		exts, err := onode.DecodeShard(it.Value(), shard, s.shardSize, s.csumBlock)
		if err != nil {
			return err
		}
		if err := o.AddShard(exts); err != nil {
			return fmt.Errorf("extent shard %d: %w", shard, err)
		}
	}
	return it.Error()
}

// checkGeometry verifies the onode invariants that depend on the store's geometry.
func (s *Store) checkGeometry(o *onode.Onode) error {
	for _, e := range o.Extents {
		switch {
		case e.Logical%s.unit != 0 || e.Phys%s.unit != 0 || e.Length%s.unit != 0:
			return fmt.Errorf("extent %+v not aligned to allocation unit %d", e, s.unit)
		case e.Phys < s.dataStart || e.Phys+e.Length > s.devSize:
			return fmt.Errorf("extent at device offset %d+%d outside data area [%d, %d)", e.Phys, e.Length, s.dataStart, s.devSize)
		case uint64(len(e.Csums)) != e.Length/s.csumBlock:
			return fmt.Errorf("extent at %d has %d checksums, want %d", e.Logical, len(e.Csums), e.Length/s.csumBlock)
		}
	}
	return nil
}

// enter guards a read-side call against Close: it fails with ErrClosed after Close, and Close waits
// for calls that entered. The returned function must be called when the call is done.
func (s *Store) enter() (func(), error) {
	s.life.RLock()
	if s.closed {
		s.life.RUnlock()
		return nil, ErrClosed
	}
	return s.leave, nil
}

// MetadataLocation says where the metadata database lives: "device region [offset, +length)" or
// "directory PATH".
func (s *Store) MetadataLocation() string { return s.meta.String() }

// MetadataOnDevice reports whether the metadata database is in a region of the store's device
// (label version 2) or of its separate metadata device (version 4), so that the store mounts
// from its devices alone.
func (s *Store) MetadataOnDevice() bool { return s.meta.fs != nil }

// MetadataOnSeparateDevice reports whether the metadata database is on a separate metadata
// device (MkfsOptions.MetadataDevice).
func (s *Store) MetadataOnSeparateDevice() bool { return s.meta.separate != nil }

// UUID returns the store's UUID.
func (s *Store) UUID() string { return s.uuid }

// MemoryTarget is the memory target the store's caches are held to (Options.MemoryTarget, or
// its default when that was 0).
func (s *Store) MemoryTarget() int64 { return s.opts.MemoryTarget }

// Close stops accepting transactions, waits for queued ones, applies every deferred write in place,
// and closes the metadata database. It does not close the device.
func (s *Store) Close() error {
	s.life.Lock()
	if s.closed {
		s.life.Unlock()
		return nil
	}
	s.closed = true
	close(s.queue)
	s.life.Unlock()
	close(s.stopBG)
	err := s.unlessStuck(func() error {
		s.wg.Wait()
		if s.failErr.Load() == nil {
			if err := s.flushDeferred(pebble.Sync); err != nil {
				return fmt.Errorf("close: apply deferred writes: %w", err)
			}
		}
		return nil
	})
	if s.db.StuckErr() != nil {
		// The store's goroutines may never end: leave them what they use (stuck.go).
		_ = s.db.Close() // stops watching the disk; the database itself stays as it is
		return fmt.Errorf("close: the store is abandoned, its goroutines and memory are held until the process exits: %w", s.stuckErr())
	}
	s.caches.close()
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	if err := s.db.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close metadata db: %w", err))
	}
	if s.db.StuckErr() != nil { // closing found the device failed (the error says so): leave metafs as it is
		return errors.Join(errs...)
	}
	if s.meta.fs != nil {
		s.meta.fs.SetGrower(nil)
	}
	if err := s.meta.close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ListCollections returns the collection names in sorted order.
func (s *Store) ListCollections(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	leave, err := s.enter()
	if err != nil {
		return nil, err
	}
	defer leave()
	s.gate.RLock()
	defer s.gate.RUnlock()
	out := make([]string, 0, len(s.pub.colls))
	for c := range s.pub.colls {
		out = append(out, c)
	}
	slices.Sort(out)
	return out, nil
}
