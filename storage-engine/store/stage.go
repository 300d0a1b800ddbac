package store

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/cobaltstore/cobalt/storage-engine/alloc"
	"github.com/cobaltstore/cobalt/storage-engine/kv"
	"github.com/cobaltstore/cobalt/storage-engine/onode"
	"github.com/cockroachdb/pebble/v2"
)

// group is the staged state of one commit group: what the committed state will become once the
// batch is durable. Only the committer uses it, under Store.commitMu.
type group struct {
	s *Store
	// batch holds the group's KV changes. It starts unindexed (indexing every key costs CPU on
	// each write) and becomes indexed the first time the group reads through it (readBatch).
	batch   *pebble.Batch
	indexed bool

	onodes map[OnodeKey]*stagedOnode
	base   map[uint64]*onode.Onode // nid -> committed onode (see stagedOnode)
	colls  map[string]bool         // collection -> exists after the group
	shared map[uint64]uint32       // unit -> reference count after the group (1 = unshared)
	blocks map[uint64][]byte       // device block -> contents written by this group (aliases writes)
	// prepared: the device ranges of prepared writes mapped by this group, with their contents.
	// Unlike blocks, they are already on the device and must not be patched in memory. (One entry
	// per extent, not per block: a 1 MiB write would otherwise add 256 map entries.)
	prepared []preparedRange
	defers   map[uint64]deferredEntry // device block -> deferred write staged by this group

	allocated []alloc.Extent // space allocated by the group (released on abort)
	freed     []alloc.Extent // space the group stops referencing (released at publish)
	dropDefer []physSeq      // published deferred entries whose records the group deleted
	writes    []pendingWrite // copy-on-write data to write before the KV commit

	// cached: per object, the data to cache at publication (bufwrites.go); cacheSeq tags the
	// group's writing buffers.
	cached   map[OnodeKey]*cachedWrites
	cacheSeq uint64

	nextNid, nextSeq uint64
	stats            kv.Stats
	txn              int  // index of the transaction being staged
	needFlush        bool // prepared data is mapped: flush the device before the KV commit
	pinned           bool // dirty onodes are pinned and marked dirty in the cache
}

// stagedOnode is an object's state in the group: o is nil when the object does not exist.
type stagedOnode struct {
	o     *onode.Onode
	owned bool // o is a private copy that may be mutated
	dirty bool // must be written (or deleted) in the batch
	// committed is the onode the KV holds under this name as the group found it (nil when none):
	// finish does not write a record equal to its record again.
	committed *onode.Onode
}

// The extent shards in the KV belong to a nid, not to a name (a rename moves the onode record
// only). base maps each nid the group has looked up to its committed onode, whose shards are what
// the KV holds for that nid; finish rewrites only the shards that changed since (DirtyShards), or
// every shard of a nid the group created.

// preparedRange is prepared data on the device at [phys, phys+len(buf)). A range whose space the
// group frees stays listed: freed space is not mapped, so no read looks it up, and it is not
// reallocated before the group is durable.
type preparedRange struct {
	phys uint64
	buf  []byte
}

// preparedBlock returns the checksum block at device offset phys if a prepared write mapped by the
// group holds it.
func (g *group) preparedBlock(phys uint64) ([]byte, bool) {
	for _, r := range g.prepared {
		if phys >= r.phys && phys-r.phys < uint64(len(r.buf)) {
			off := phys - r.phys
			return r.buf[off : off+g.s.csumBlock], true
		}
	}
	return nil, false
}

type pendingWrite struct {
	phys uint64
	buf  []byte
	txn  int
}

func (s *Store) newGroup() *group {
	return &group{
		s:        s,
		batch:    s.db.NewBatch(),
		onodes:   map[OnodeKey]*stagedOnode{},
		base:     map[uint64]*onode.Onode{},
		colls:    map[string]bool{},
		shared:   map[uint64]uint32{},
		blocks:   map[uint64][]byte{},
		defers:   map[uint64]deferredEntry{},
		cached:   map[OnodeKey]*cachedWrites{},
		cacheSeq: s.nextGroup(),
		nextNid:  s.nextNid,
		nextSeq:  s.nextSeq,
		stats:    s.pub.stats,
	}
}

func (g *group) applyTxn(i int, t *Transaction, preps map[int]*prepared) error {
	g.txn = i
	for j, o := range t.ops {
		if err := g.applyOp(o, preps[j]); err != nil {
			return fmt.Errorf("transaction op %d (%s %s/%s): %w", j, o.kind, o.c, o.o, err)
		}
	}
	return nil
}

// applyOp stages one operation; p is its prepared data (writes only, may be nil).
func (g *group) applyOp(o op, p *prepared) error {
	if err := kv.ValidateCollection(o.c); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	switch o.kind {
	case opCreateCollection:
		if g.collExists(o.c) {
			return fmt.Errorf("collection %q: %w", o.c, ErrExists)
		}
		g.colls[o.c] = true
		return g.batch.Set(kv.CollectionKey(o.c), kv.Collection{}.Encode(), nil)
	case opRemoveCollection:
		if !g.collExists(o.c) {
			return fmt.Errorf("collection %q: %w", o.c, ErrNotFound)
		}
		empty, err := g.collEmpty(o.c)
		if err != nil {
			return err
		}
		if !empty {
			return fmt.Errorf("collection %q: %w", o.c, ErrNotEmpty)
		}
		g.colls[o.c] = false
		return g.batch.Delete(kv.CollectionKey(o.c), nil)
	}
	if !g.collExists(o.c) {
		return fmt.Errorf("collection %q: %w", o.c, ErrNotFound)
	}
	if err := kv.ValidateObject(o.o); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	k := OnodeKey{o.c, o.o}
	switch o.kind {
	case opTouch:
		_, err := g.mutOnode(k, true)
		return err
	case opWrite:
		g.noteWrite(k, o.off, o.data, o.nocache)
		if p != nil {
			return g.writePrepared(k, o.off, o.data, p)
		}
		return g.write(k, o.off, o.data)
	case opZero:
		g.noteReplace(k)
		return g.zero(k, o.off, o.length)
	case opTruncate:
		g.noteReplace(k)
		return g.truncate(k, o.off)
	case opRemove:
		g.noteReplace(k)
		return g.remove(k)
	case opSetAttr:
		on, err := g.mutOnode(k, false)
		if err != nil {
			return err
		}
		if on.Xattrs == nil {
			on.Xattrs = map[string][]byte{}
		}
		on.Xattrs[o.name] = o.data
		return nil
	case opRmAttr:
		on, err := g.mutOnode(k, false)
		if err != nil {
			return err
		}
		delete(on.Xattrs, o.name)
		return nil
	case opOmapSet:
		on, err := g.get(k)
		if err != nil {
			return err
		}
		for _, key := range slices.Sorted(maps.Keys(o.kvs)) {
			if err := g.batch.Set(kv.OmapKey(on.Nid, key), o.kvs[key], nil); err != nil {
				return err
			}
		}
		return nil
	case opOmapRmKeys:
		on, err := g.get(k)
		if err != nil {
			return err
		}
		for _, key := range o.keys {
			if err := g.batch.Delete(kv.OmapKey(on.Nid, key), nil); err != nil {
				return err
			}
		}
		return nil
	case opOmapClear:
		on, err := g.mutOnode(k, false)
		if err != nil {
			return err
		}
		on.OmapHeader = nil
		lo, hi := kv.OmapSpan(on.Nid, "")
		return g.batch.DeleteRange(lo, hi, nil)
	case opOmapSetHeader:
		on, err := g.mutOnode(k, false)
		if err != nil {
			return err
		}
		on.OmapHeader = o.data
		if on.OmapHeader == nil {
			on.OmapHeader = []byte{}
		}
		return nil
	case opClone:
		if err := kv.ValidateObject(o.dst); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		if err := kv.ValidateCollection(o.dc); err != nil {
			return fmt.Errorf("%w: clone target: %w", ErrInvalid, err)
		}
		if !g.collExists(o.dc) {
			return fmt.Errorf("clone target collection %q: %w", o.dc, ErrNotFound)
		}
		g.noteReplace(OnodeKey{o.dc, o.dst})
		return g.clone(k, OnodeKey{o.dc, o.dst})
	case opRename:
		if err := kv.ValidateObject(o.dst); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		g.noteReplace(k)
		g.noteReplace(OnodeKey{o.c, o.dst})
		return g.rename(k, OnodeKey{o.c, o.dst})
	}
	return fmt.Errorf("unknown op %d: %w", o.kind, ErrInvalid)
}

func (g *group) collExists(c string) bool {
	if v, ok := g.colls[c]; ok {
		return v
	}
	_, ok := g.s.pub.colls[c]
	return ok
}

// collEmpty reports whether collection c holds no object once the group's changes apply.
func (g *group) collEmpty(c string) (bool, error) {
	for k, st := range g.onodes {
		if k.Collection == c && st.o != nil {
			return false, nil
		}
	}
	lo, hi := kv.OnodeSpan(c, "")
	it, err := g.s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return false, fmt.Errorf("list collection %q: %w", c, err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		_, name, err := kv.ParseOnodeKey(it.Key())
		if err != nil {
			return false, errors.Join(corruptMeta("%v", err), it.Close())
		}
		if st, staged := g.onodes[OnodeKey{c, name}]; staged && st.o == nil {
			continue
		}
		return false, it.Close()
	}
	return true, it.Close()
}

// lookup returns the staged state of k, loading the committed onode on first use.
func (g *group) lookup(k OnodeKey) (*stagedOnode, error) {
	if st, ok := g.onodes[k]; ok {
		return st, nil
	}
	o, err := g.s.loadOnode(k)
	if err != nil {
		return nil, err
	}
	st := &stagedOnode{o: o, committed: o}
	g.onodes[k] = st
	if o != nil {
		g.base[o.Nid] = o
	}
	return st, nil
}

// get returns the object's onode for reading; ErrNotFound if it does not exist.
func (g *group) get(k OnodeKey) (*onode.Onode, error) {
	st, err := g.lookup(k)
	if err != nil {
		return nil, err
	}
	if st.o == nil {
		return nil, fmt.Errorf("object %s/%s: %w", k.Collection, k.Object, ErrNotFound)
	}
	return st.o, nil
}

// mutOnode returns a private, mutable copy of the object's onode, creating the object if create
// is set, otherwise failing with ErrNotFound.
func (g *group) mutOnode(k OnodeKey, create bool) (*onode.Onode, error) {
	st, err := g.lookup(k)
	if err != nil {
		return nil, err
	}
	if st.o == nil {
		if !create {
			return nil, fmt.Errorf("object %s/%s: %w", k.Collection, k.Object, ErrNotFound)
		}
		st.o = &onode.Onode{Nid: g.nextNid}
		g.nextNid++
		st.owned = true
		g.stats.Objects++
	}
	if !st.owned {
		// The published onode stays as readers see it; the staged one shares its extents'
		// checksum arrays until a write changes one (onode.Fork, SetCsum).
		st.o = st.o.Fork()
		st.owned = true
	}
	st.dirty = true
	return st.o, nil
}

func (g *group) setSize(o *onode.Onode, size uint64) {
	g.stats.LogicalBytes = g.stats.LogicalBytes - o.Size + size
	o.Size = size
}

func (g *group) remove(k OnodeKey) error {
	st, err := g.lookup(k)
	if err != nil {
		return err
	}
	if st.o == nil {
		return fmt.Errorf("object %s/%s: %w", k.Collection, k.Object, ErrNotFound)
	}
	o := st.o
	for _, e := range o.Extents {
		g.deref(onode.PhysRange{Phys: e.Phys, Length: e.Length})
	}
	lo, hi := kv.OmapSpan(o.Nid, "")
	if err := g.batch.DeleteRange(lo, hi, nil); err != nil {
		return err
	}
	if g.base[o.Nid] != nil { // the nid's extent shards are in the KV
		lo, hi := kv.ExtentShardSpan(o.Nid)
		if err := g.batch.DeleteRange(lo, hi, nil); err != nil {
			return err
		}
	}
	g.stats.Objects--
	g.stats.LogicalBytes -= o.Size
	st.o, st.owned, st.dirty = nil, false, true
	return nil
}

func (g *group) clone(src, dst OnodeKey) error {
	so, err := g.get(src)
	if err != nil {
		return err
	}
	if src == dst {
		return nil
	}
	if st, err := g.lookup(dst); err != nil {
		return err
	} else if st.o != nil {
		if err := g.remove(dst); err != nil {
			return err
		}
	}
	do, err := g.mutOnode(dst, true)
	if err != nil {
		return err
	}
	nid := do.Nid
	*do = *so.Clone()
	do.Nid = nid
	g.stats.LogicalBytes += do.Size
	for _, e := range do.Extents {
		g.addRef(onode.PhysRange{Phys: e.Phys, Length: e.Length})
	}
	lo, hi := kv.OmapSpan(so.Nid, "")
	rb, err := g.readBatch()
	if err != nil {
		return fmt.Errorf("read omap of %s/%s: %w", src.Collection, src.Object, err)
	}
	it, err := rb.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return fmt.Errorf("read omap of %s/%s: %w", src.Collection, src.Object, err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		_, key, err := kv.ParseOmapKey(it.Key())
		if err != nil {
			return errors.Join(corruptMeta("%v", err), it.Close())
		}
		if err := g.batch.Set(kv.OmapKey(nid, key), slices.Clone(it.Value()), nil); err != nil {
			return errors.Join(err, it.Close())
		}
	}
	return it.Close()
}

func (g *group) rename(src, dst OnodeKey) error {
	so, err := g.get(src)
	if err != nil {
		return err
	}
	if src == dst {
		return nil
	}
	dt, err := g.lookup(dst)
	if err != nil {
		return err
	}
	if dt.o != nil {
		return fmt.Errorf("rename target %s/%s: %w", dst.Collection, dst.Object, ErrExists)
	}
	dt.o, dt.owned, dt.dirty = so, false, true
	st := g.onodes[src]
	st.o, st.owned, st.dirty = nil, false, true
	return nil
}

// readBatch returns the group's batch, indexed, so that reads through it see the group's own
// writes (omap entries set earlier in the group).
func (g *group) readBatch() (*pebble.Batch, error) {
	if g.indexed {
		return g.batch, nil
	}
	ib := g.s.db.NewIndexedBatch()
	if err := ib.Apply(g.batch, nil); err != nil {
		return nil, errors.Join(err, ib.Close())
	}
	if err := g.batch.Close(); err != nil {
		return nil, errors.Join(err, ib.Close())
	}
	g.batch, g.indexed = ib, true
	return ib, nil
}

// refs returns the reference count of allocation unit u as the group sees it.
func (g *group) refs(u uint64) uint32 {
	if n, ok := g.shared[u]; ok {
		return n
	}
	if n, ok := g.s.pub.shared[u]; ok {
		return n
	}
	return 1
}

func (g *group) addRef(r onode.PhysRange) {
	for u := r.Phys; u < r.Phys+r.Length; u += g.s.unit {
		g.shared[u] = g.refs(u) + 1
	}
}

// deref drops one reference to each unit of r; units no longer referenced are freed at publish,
// together with the deferred writes pending in them.
func (g *group) deref(r onode.PhysRange) {
	unit := g.s.unit
	for u := r.Phys; u < r.Phys+r.Length; u += unit {
		n := g.refs(u)
		if n >= 2 {
			g.shared[u] = n - 1
			continue
		}
		g.shared[u] = 1
		if l := len(g.freed); l > 0 && uint64(g.freed[l-1].End()) == u {
			g.freed[l-1].Length += int64(unit)
		} else {
			g.freed = append(g.freed, alloc.Extent{Offset: int64(u), Length: int64(unit)})
		}
		for b := u; b < u+unit; b += g.s.csumBlock {
			delete(g.blocks, b)
			if e, ok := g.defers[b]; ok {
				_ = g.batch.Delete(kv.DeferredKey(e.seq), nil)
				delete(g.defers, b)
			}
		}
		for _, ps := range g.s.overlay.entriesIn(u, u+unit) {
			_ = g.batch.Delete(kv.DeferredKey(ps.seq), nil)
			g.dropDefer = append(g.dropDefer, ps)
		}
	}
}

// allocate reserves n bytes of new space.
func (g *group) allocate(n uint64) ([]alloc.Extent, error) {
	exts, err := g.s.alloc.Allocate(int64(n))
	if err != nil {
		if free := g.s.alloc.Free(); free < int64(n) {
			return nil, fmt.Errorf("allocate %d bytes (%d free): %w: %w", n, free, ErrNoSpace, err)
		}
		return nil, fmt.Errorf("allocate %d bytes: %w", n, err)
	}
	g.allocated = append(g.allocated, exts...)
	return exts, nil
}

// finish writes the staged onodes, superblock and stats into the batch.
func (g *group) finish() error {
	for k, st := range g.onodes {
		if !st.dirty {
			continue
		}
		key := kv.OnodeKey(k.Collection, k.Object)
		var err error
		if st.o == nil {
			err = g.batch.Delete(key, nil)
		} else {
			// A change of the extent map only (most writes) leaves the record as the KV holds
			// it: only the changed shards are written.
			if rec := st.o.Encode(make([]byte, 0, 32)); st.committed == nil || !bytes.Equal(rec, st.committed.Encode(make([]byte, 0, 32))) {
				err = g.batch.Set(key, rec, nil)
			}
			if err == nil {
				err = g.stageShards(st.o)
			}
		}
		if err != nil {
			return fmt.Errorf("stage onode %s/%s: %w", k.Collection, k.Object, err)
		}
	}
	for _, st := range g.onodes {
		if st.dirty && st.o != nil {
			st.o.ClearDirty()
		}
	}
	if g.nextNid != g.s.nextNid {
		sb := kv.Superblock{Format: FormatVersion, UUID: g.s.uuid, DeviceSize: g.s.devSize, MinAllocSize: g.s.unit,
			ChecksumBlockSize: g.s.csumBlock, DataStart: g.s.dataStart, NextNid: g.nextNid}
		if err := g.batch.Set(kv.SuperKey(), sb.Encode(), nil); err != nil {
			return fmt.Errorf("stage superblock: %w", err)
		}
	}
	if g.stats != g.s.pub.stats {
		if err := g.batch.Set(kv.StatsKey(), g.stats.Encode(), nil); err != nil {
			return fmt.Errorf("stage stats: %w", err)
		}
	}
	for k, st := range g.onodes {
		if st.dirty {
			g.s.cache.Pin(k)
			g.s.cache.MarkDirty(k)
		}
	}
	g.pinned = true
	return nil
}

// stageShards writes the extent shards of o that differ from what the KV holds for its nid.
func (g *group) stageShards(o *onode.Onode) error {
	base := g.base[o.Nid]
	shards := o.DirtyShards(g.s.shardSize)
	if base == nil { // a nid new in this group: nothing of it is in the KV
		shards = o.Shards(g.s.shardSize)
	} else if g.s.opts.verifyShards {
		if err := verifyCleanShards(base, o, shards, g.s.shardSize, g.s.csumBlock); err != nil {
			return err
		}
	}
	for _, i := range shards {
		key := kv.ExtentShardKey(o.Nid, i)
		var err error
		if buf, ok := o.EncodeShard(nil, i, g.s.shardSize, g.s.csumBlock); ok {
			err = g.batch.Set(key, buf, nil)
		} else {
			err = g.batch.Delete(key, nil)
		}
		if err != nil {
			return fmt.Errorf("stage extent shard %d: %w", i, err)
		}
	}
	return nil
}

// verifyCleanShards checks that every shard of o not in dirty encodes as in base: a change the
// dirty tracking missed would otherwise never reach the KV. Tests enable it (Options.verifyShards).
func verifyCleanShards(base, o *onode.Onode, dirty []uint64, shardSize, csumBlock uint64) error {
	all := append(base.Shards(shardSize), o.Shards(shardSize)...)
	slices.Sort(all)
	for _, i := range slices.Compact(all) {
		if _, found := slices.BinarySearch(dirty, i); found {
			continue
		}
		was, _ := base.EncodeShard(nil, i, shardSize, csumBlock)
		now, _ := o.EncodeShard(nil, i, shardSize, csumBlock)
		if !bytes.Equal(was, now) {
			return fmt.Errorf("invariant: extent shard %d of nid %d changed but is not marked dirty", i, o.Nid)
		}
	}
	return nil
}

// unpin undoes finish's pins without changing the cached onodes.
func (g *group) unpin() {
	if !g.pinned {
		return
	}
	for k, st := range g.onodes {
		if st.dirty {
			g.s.cache.MarkClean(k)
			g.s.cache.Unpin(k)
		}
	}
	g.pinned = false
}

// publish installs the group's state in memory, under the gate: from now on reads see it. The
// space it freed is released later, by release, once the group is durable.
func (g *group) publish() {
	s := g.s
	if len(g.dropDefer) > 0 {
		// The flusher may be writing one of the freed blocks: wait for its cycle to end.
		s.flushMu.Lock()
		defer s.flushMu.Unlock()
	}
	s.gate.Lock()
	for c, exists := range g.colls {
		if exists {
			s.pub.colls[c] = struct{}{}
		} else {
			delete(s.pub.colls, c)
		}
	}
	for k, st := range g.onodes {
		if !st.dirty {
			continue
		}
		g.publishBuffers(k)
		if st.o == nil {
			s.cache.Remove(k)
		} else {
			s.cache.Insert(k, st.o)
		}
		s.cache.MarkClean(k)
		s.cache.Unpin(k)
	}
	if len(g.shared) > 0 {
		s.recordPriorLocked(g.shared)
	}
	for u, n := range g.shared {
		if n <= 1 {
			delete(s.pub.shared, u)
		} else {
			s.pub.shared[u] = n
		}
	}
	s.pub.stats = g.stats
	for _, ps := range g.dropDefer {
		s.overlay.removeIfSeq(ps.phys, ps.seq)
	}
	for phys, e := range g.defers {
		s.overlay.put(phys, e)
	}
	s.gate.Unlock()
	s.nextNid, s.nextSeq = g.nextNid, g.nextSeq
}

// release makes the space the group freed allocatable again and wakes the deferred flusher if
// enough deferred writes are pending. Called once the group is durable. Readers of the space's
// old contents are gone: publish waited for them under the gate.
func (g *group) release() {
	s := g.s
	if len(g.freed) > 0 {
		if err := s.alloc.Release(g.freed); err != nil {
			s.m.allocErrors.Add(1)
		}
	}
	if n, _ := s.overlay.len(); n >= s.opts.DeferredBatch {
		select {
		case s.kickDef <- struct{}{}:
		default:
		}
	}
}
