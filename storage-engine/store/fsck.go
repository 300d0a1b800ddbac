package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/cobaltstore/cobalt/storage-engine/alloc"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/kv"
	"github.com/cobaltstore/cobalt/storage-engine/metafs"
	"github.com/cobaltstore/cobalt/storage-engine/onode"
	"github.com/cockroachdb/pebble/v2"
)

// FsckReport is the result of a consistency check.
type FsckReport struct {
	Deep                         bool
	Collections, Objects         int
	Extents, OmapEntries         int
	DeferredRecords              int
	ReferencedBytes, SharedBytes uint64 // device bytes referenced (once, and more than once)
	FreeBytes                    uint64
	// Leaked is allocated space no object references (Repair releases it).
	Leaked      []alloc.Extent
	LeakedBytes uint64
	// OrphanOmapNids are nids with omap entries but no onode (Repair deletes the entries).
	OrphanOmapNids []uint64
	// ExtentShards counts extent-map shard records; OrphanExtentNids are nids with shards but
	// no onode (Repair deletes the shards).
	ExtentShards     int
	OrphanExtentNids []uint64
	// CorruptBlocks counts checksum blocks that failed verification (deep only).
	CorruptBlocks int
	// MetaRegion summarizes the metadata region's file system when the metadata database is on
	// the device (nil when it is in a host directory); its problems are in Errors.
	MetaRegion *MetaRegionSummary
	// Errors lists every inconsistency found, each naming what is wrong and where.
	Errors []string
}

// MetaRegionSummary describes the metadata region (storage-engine/metafs) as Fsck found it.
type MetaRegionSummary struct {
	// Offset and Length locate the region on the device (the metadata device when
	// SeparateDevice).
	Offset, Length int64
	// SeparateDevice: the region is on the store's separate metadata device.
	SeparateDevice bool
	// Files counts the file names in the region, Extents the files' extents.
	Files, Extents int
	// UsedBytes is the region's space in use (superblock slots, journal, files' extents, space
	// freed by journal records not yet durable), FreeBytes what is left.
	UsedBytes, FreeBytes int64
	// Generation is the superblock generation naming the journal (one more at each journal
	// compaction), JournalEpoch the journal's epoch.
	Generation, JournalEpoch uint64
	// JournalEntries and JournalBytes are how much of the journal holds entries.
	JournalEntries int
	JournalBytes   int64
	// Notes are the check's findings that need no repair (e.g. a torn superblock update).
	Notes []string
}

// OK reports whether the store is fully consistent: no errors, no leaks, no orphans.
func (r *FsckReport) OK() bool {
	return len(r.Errors) == 0 && r.LeakedBytes == 0 && len(r.OrphanOmapNids) == 0 && len(r.OrphanExtentNids) == 0
}

func (r *FsckReport) errorf(format string, args ...any) {
	if len(r.Errors) < 1000 {
		r.Errors = append(r.Errors, fmt.Sprintf(format, args...))
	}
}

// freeLister is implemented by allocators that can list their free extents.
type freeLister interface{ Extents() []alloc.Extent }

// Fsck checks the store. Shallow: the superblock and label agree and name this format; the
// label's metadata region is the one mounted and ends before the data space, and the region's
// file system passes its check (metafs FS.Check: journal, names, extents, allocator); every
// onode and its extent shards decode and fit the geometry; no extent shard lacks its onode; collections, nids, statistics and omap entries are consistent; reference counts match
// the extents that onodes share; deferred records match the in-memory overlay and lie in referenced
// space; the allocator's free space is exactly the complement of the referenced space (overlaps are
// errors, unreferenced allocated space is reported as leaked). Deep also reads every referenced
// block and verifies its checksum. Commits wait while Fsck runs. The error is non-nil only if the
// check could not run; inconsistencies are in the report.
func (s *Store) Fsck(ctx context.Context, deep bool) (*FsckReport, error) {
	leave, err := s.enter()
	if err != nil {
		return nil, err
	}
	defer leave()
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	s.inflight.Wait() // groups waiting for their sync hold space not yet released
	s.growMu.Lock()   // after the syncs: a WAL write may need to grow the metadata
	defer s.growMu.Unlock()
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.gate.RLock()
	defer s.gate.RUnlock()
	return s.fsckLocked(ctx, deep)
}

// REQUIRES: s.commitMu, s.flushMu, s.gate (shared).
func (s *Store) fsckLocked(ctx context.Context, deep bool) (*FsckReport, error) {
	r := &FsckReport{Deep: deep}
	if sb, err := s.readSuper(); err != nil {
		r.errorf("superblock: %v", err)
	} else {
		if sb.UUID != s.uuid || sb.MinAllocSize != s.unit || sb.ChecksumBlockSize != s.csumBlock || sb.DataStart != s.dataStart || sb.DeviceSize != s.devSize || sb.Format != FormatVersion {
			r.errorf("superblock %+v does not match the mounted geometry", *sb)
		}
		if sb.NextNid != s.nextNid {
			r.errorf("superblock next nid %d, in memory %d", sb.NextNid, s.nextNid)
		}
	}
	if l, err := blockdev.ReadLabel(s.dev); err != nil {
		r.errorf("label: %v", err)
	} else {
		if l.UUIDString() != s.uuid {
			r.errorf("label UUID %s, superblock %s", l.UUIDString(), s.uuid)
		}
		s.checkLabelRegion(r, l)
	}
	if s.meta.fs != nil {
		s.checkMetaRegion(r)
	}
	colls, err := s.loadCollections()
	if err != nil {
		r.errorf("collections: %v", err)
	}
	r.Collections = len(colls)
	for c := range colls {
		if _, ok := s.pub.colls[c]; !ok {
			r.errorf("collection %q is in the KV but not in memory", c)
		}
	}
	for c := range s.pub.colls {
		if _, ok := colls[c]; !ok {
			r.errorf("collection %q is in memory but not in the KV", c)
		}
	}

	nids := map[uint64]OnodeKey{}
	scan, err := s.scanOnodes(ctx, func(k OnodeKey, o *onode.Onode) error {
		if _, ok := colls[k.Collection]; !ok {
			r.errorf("object %s/%s is in a collection that does not exist", k.Collection, k.Object)
		}
		if prev, dup := nids[o.Nid]; dup {
			r.errorf("objects %s/%s and %s/%s share nid %d", prev.Collection, prev.Object, k.Collection, k.Object, o.Nid)
		}
		nids[o.Nid] = k
		if o.Nid >= s.nextNid {
			r.errorf("object %s/%s has nid %d >= next nid %d", k.Collection, k.Object, o.Nid, s.nextNid)
		}
		if n := len(o.Extents); n > 0 && o.Extents[n-1].LogicalEnd() > alignUp(o.Size, s.unit) {
			r.errorf("object %s/%s maps bytes up to %d past its size %d", k.Collection, k.Object, o.Extents[n-1].LogicalEnd(), o.Size)
		}
		r.Extents += len(o.Extents)
		if deep {
			s.deepCheck(r, k, o)
		}
		return ctx.Err()
	})
	if err != nil {
		if IsCorruption(err) {
			r.errorf("%v", err)
			return r, nil
		}
		return nil, fmt.Errorf("fsck: %w", err)
	}
	r.Objects = int(scan.objects)

	// Statistics.
	if st, err := s.readStats(); err != nil {
		r.errorf("stats record: %v", err)
	} else if st.Objects != scan.objects || st.LogicalBytes != scan.logicalBytes {
		r.errorf("stats record says %d objects / %d bytes, onodes hold %d / %d", st.Objects, st.LogicalBytes, scan.objects, scan.logicalBytes)
	}
	if s.pub.stats.Objects != scan.objects || s.pub.stats.LogicalBytes != scan.logicalBytes {
		r.errorf("in-memory stats %d objects / %d bytes, onodes hold %d / %d", s.pub.stats.Objects, s.pub.stats.LogicalBytes, scan.objects, scan.logicalBytes)
	}

	// Reference counts.
	segs := scan.refs.sweep()
	for _, sg := range segs {
		r.ReferencedBytes += sg.end - sg.start
		if sg.n >= 2 {
			r.SharedBytes += sg.end - sg.start
		}
	}
	want := scan.refs.shared(s.unit)
	for u, n := range want {
		if got := s.pub.shared[u]; got != n {
			r.errorf("unit at %d is referenced %d times, refcount says %d", u, n, max(got, 1))
		}
	}
	for u, n := range s.pub.shared {
		if _, ok := want[u]; !ok {
			r.errorf("refcount %d recorded for unit at %d, which is referenced at most once", n, u)
		}
	}

	s.checkOmap(ctx, r, nids)
	s.checkExtentShards(ctx, r, nids)
	s.checkDeferred(r, segs)
	s.checkAllocator(r, scan.refs.ranges())
	return r, nil
}

// checkLabelRegion checks the metadata region the label names: it ends at or before the data
// space, and it is the region mounted (or there is none, for metadata in a host directory). For a
// store whose metadata is on a separate device it checks that device's label instead.
func (s *Store) checkLabelRegion(r *FsckReport, l blockdev.Label) {
	region := metafs.Extent{Offset: l.MetaOffset, Length: l.MetaLength}
	switch {
	case l.MetaOnSeparateDevice && s.meta.separate == nil:
		r.errorf("label says the metadata is on a separate device, but it is mounted from %s", s.meta)
		return
	case l.MetaOnSeparateDevice:
		s.checkMetaDeviceLabel(r, l)
		return
	case s.meta.separate != nil:
		r.errorf("label names no separate metadata device, but the metadata is mounted from %s", s.meta)
		return
	case !l.MetaOnDevice() && s.meta.fs != nil:
		r.errorf("label names no metadata region, but the metadata is mounted from %s", s.meta)
	case !l.MetaOnDevice():
		return
	case s.meta.fs == nil:
		r.errorf("label names the metadata region [%d, +%d), but the metadata is mounted from %s", l.MetaOffset, l.MetaLength, s.meta)
	case region != s.meta.region:
		r.errorf("label names the metadata region [%d, +%d), but %s is mounted", l.MetaOffset, l.MetaLength, s.meta)
	}
	if end := uint64(region.End()); end > s.dataStart {
		r.errorf("label's metadata region [%d, +%d) ends at %d, past the data space's start %d", l.MetaOffset, l.MetaLength, end, s.dataStart)
	}
}

// checkMetaDeviceLabel checks the label of the separate metadata device against the data
// device's label l and the region mounted.
func (s *Store) checkMetaDeviceLabel(r *FsckReport, l blockdev.Label) {
	ml, err := checkMetaDevice(l, s.meta.separate)
	if err != nil {
		r.errorf("metadata device label: %v", err)
		return
	}
	if region := (metafs.Extent{Offset: ml.MetaOffset, Length: ml.MetaLength}); region != s.meta.region {
		r.errorf("metadata device label names the region [%d, +%d), but %s is mounted", ml.MetaOffset, ml.MetaLength, s.meta)
	}
	if ml.MetaOffset < labelReserve || ml.MetaOffset+ml.MetaLength > s.meta.separate.Size() {
		r.errorf("metadata device label's region [%d, +%d) is not inside the %d-byte device after its label area", ml.MetaOffset, ml.MetaLength, s.meta.separate.Size())
	}
	if ml.ClusterID != l.ClusterID {
		r.errorf("metadata device label names cluster %q, the data device's %q", ml.ClusterIDString(), l.ClusterIDString())
	}
}

// checkMetaRegion runs the metadata region's own check on the mounted file system: its
// problems are fsck errors, its space and journal go into r.MetaRegion.
func (s *Store) checkMetaRegion(r *FsckReport) {
	mr, err := s.meta.fs.Check()
	r.MetaRegion = &MetaRegionSummary{Offset: s.meta.region.Offset, Length: s.meta.region.Length, SeparateDevice: s.meta.separate != nil,
		Files: mr.Files, Extents: mr.Extents, UsedBytes: mr.UsedBytes, FreeBytes: mr.FreeBytes,
		Generation: mr.Generation, JournalEpoch: mr.Epoch, JournalEntries: mr.JournalEntries, JournalBytes: mr.JournalBytes,
		Notes: mr.Notes}
	for _, p := range mr.Problems {
		r.errorf("metadata region: %s", p)
	}
	if err != nil && len(mr.Problems) == 0 {
		r.errorf("metadata region: %v", err)
	}
}

func (s *Store) readStats() (*kv.Stats, error) {
	v, c, err := s.db.Get(kv.StatsKey())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return kv.DecodeStats(v)
}

func (s *Store) checkOmap(ctx context.Context, r *FsckReport, nids map[uint64]OnodeKey) {
	lo, hi := kv.AllOmapSpan()
	r.OmapEntries, r.OrphanOmapNids = s.scanNidRecords(ctx, r, "omap", lo, hi, func(k []byte) (uint64, error) {
		nid, _, err := kv.ParseOmapKey(k)
		return nid, err
	}, nids)
}

// checkExtentShards counts the extent-map shards and finds those of nids without an onode (the
// shards of live onodes were decoded and checked by the onode scan).
func (s *Store) checkExtentShards(ctx context.Context, r *FsckReport, nids map[uint64]OnodeKey) {
	lo, hi := kv.AllExtentShardsSpan()
	r.ExtentShards, r.OrphanExtentNids = s.scanNidRecords(ctx, r, "extent shard", lo, hi, func(k []byte) (uint64, error) {
		nid, _, err := kv.ParseExtentShardKey(k)
		return nid, err
	}, nids)
}

// scanNidRecords scans the records in [lo, hi), whose keys lead with an onode's nid (parsed by
// nidOf), and returns how many there are and, once each, the nids that have no onode. Keys that
// do not parse are fsck errors named by what.
func (s *Store) scanNidRecords(ctx context.Context, r *FsckReport, what string, lo, hi []byte,
	nidOf func([]byte) (uint64, error), nids map[uint64]OnodeKey) (count int, orphans []uint64) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		r.errorf("%s scan: %v", what, err)
		return 0, nil
	}
	defer it.Close()
	var last uint64
	seen := false
	for ok := it.First(); ok && ctx.Err() == nil; ok = it.Next() {
		nid, err := nidOf(it.Key())
		if err != nil {
			r.errorf("%s key: %v", what, err)
			continue
		}
		count++
		if _, ok := nids[nid]; !ok && (!seen || nid != last) {
			orphans = append(orphans, nid)
		}
		last, seen = nid, true
	}
	return count, orphans
}

func (s *Store) checkDeferred(r *FsckReport, segs []refSeg) {
	lo, hi := kv.DeferredSpan()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		r.errorf("deferred scan: %v", err)
		return
	}
	defer it.Close()
	inKV := map[uint64]uint64{}
	for ok := it.First(); ok; ok = it.Next() {
		seq, err := kv.ParseDeferredKey(it.Key())
		if err != nil {
			r.errorf("deferred key: %v", err)
			continue
		}
		d, err := kv.DecodeDeferred(it.Value())
		if err != nil {
			r.errorf("deferred record %d: %v", seq, err)
			continue
		}
		r.DeferredRecords++
		if prev, dup := inKV[d.Phys]; dup {
			r.errorf("deferred records %d and %d both target device offset %d", prev, seq, d.Phys)
		}
		inKV[d.Phys] = seq
		i, found := slices.BinarySearchFunc(segs, d.Phys, func(sg refSeg, p uint64) int {
			if sg.end <= p {
				return -1
			}
			if sg.start > p {
				return 1
			}
			return 0
		})
		_ = i
		if !found {
			r.errorf("deferred record %d targets unreferenced device offset %d", seq, d.Phys)
		}
		if e, ok := s.overlay.getEntry(d.Phys); !ok || e.seq != seq {
			r.errorf("deferred record %d at %d is not the pending in-memory write", seq, d.Phys)
		}
	}
	if n, _ := s.overlay.len(); n != len(inKV) {
		r.errorf("%d deferred writes pending in memory, %d records in the KV", n, len(inKV))
	}
}

// checkAllocator compares the allocator's free space with the referenced ranges.
func (s *Store) checkAllocator(r *FsckReport, used []refSeg) {
	free, err := s.freeExtents()
	if err != nil {
		r.errorf("list free space: %v", err)
		return
	}
	slices.SortFunc(free, func(a, b alloc.Extent) int { return cmp.Compare(a.Offset, b.Offset) })
	var total uint64
	for _, f := range free {
		total += uint64(f.Length)
	}
	r.FreeBytes = total
	if got := uint64(s.alloc.Free()); got != total {
		r.errorf("allocator reports %d free bytes but lists %d", got, total)
	}
	// "Should be used": the label area, the space the metadata database grew into (metagrow.go)
	// and every referenced range (sorted, disjoint).
	should := append([]refSeg{{0, s.dataStart, 1}}, used...)
	for _, e := range s.metaSpace() {
		ms, me := uint64(e.Offset), uint64(e.End())
		i, _ := slices.BinarySearchFunc(used, ms, func(sg refSeg, p uint64) int { return cmp.Compare(sg.end, p+1) })
		if i < len(used) && used[i].start < me {
			r.errorf("object data [%d, %d) lies in the metadata database's space [%d, %d)", used[i].start, used[i].end, ms, me)
			continue
		}
		should = append(should, refSeg{ms, me, 1})
	}
	slices.SortFunc(should, func(a, b refSeg) int { return cmp.Compare(a.start, b.start) })
	for _, f := range free {
		fs, fe := uint64(f.Offset), uint64(f.End())
		i, _ := slices.BinarySearchFunc(should, fs, func(sg refSeg, p uint64) int { return cmp.Compare(sg.end, p+1) })
		if i < len(should) && should[i].start < fe {
			r.errorf("free space [%d, %d) overlaps referenced space [%d, %d)", fs, fe, should[i].start, should[i].end)
		}
	}
	// Unreferenced space (the gaps between should ranges) must be free, or it is leaked.
	pos, fi := uint64(0), 0
	for _, u := range append(should, refSeg{s.devSize, s.devSize, 0}) {
		s.classifyGap(r, free, &fi, pos, u.start)
		pos = max(pos, u.end)
	}
}

// classifyGap records as leaked the parts of [lo, hi) not covered by free extents.
func (s *Store) classifyGap(r *FsckReport, free []alloc.Extent, fi *int, lo, hi uint64) {
	for lo < hi {
		for *fi < len(free) && uint64(free[*fi].End()) <= lo {
			*fi++
		}
		if *fi >= len(free) || uint64(free[*fi].Offset) >= hi {
			r.addLeak(lo, hi)
			return
		}
		f := free[*fi]
		if uint64(f.Offset) > lo {
			r.addLeak(lo, uint64(f.Offset))
		}
		lo = min(hi, uint64(f.End()))
	}
}

func (r *FsckReport) addLeak(lo, hi uint64) {
	if lo >= hi {
		return
	}
	r.Leaked = append(r.Leaked, alloc.Extent{Offset: int64(lo), Length: int64(hi - lo)})
	r.LeakedBytes += hi - lo
}

// freeExtents lists the allocator's free space. Allocators that cannot list it are drained with
// Allocate and refilled with Release (commits are blocked while fsck runs).
func (s *Store) freeExtents() ([]alloc.Extent, error) {
	if fl, ok := s.alloc.(freeLister); ok {
		return fl.Extents(), nil
	}
	n := s.alloc.Free()
	if n == 0 {
		return nil, nil
	}
	exts, err := s.alloc.Allocate(n)
	if err != nil {
		return nil, err
	}
	return slices.Clone(exts), s.alloc.Release(exts)
}

// deepCheck reads every block of o and verifies its checksum.
func (s *Store) deepCheck(r *FsckReport, k OnodeKey, o *onode.Onode) {
	const chunk = 1 << 20
	bs := s.csumBlock
	for _, e := range o.Extents {
		for off := uint64(0); off < e.Length; off += chunk {
			n := min(chunk, e.Length-off)
			buf := blockdev.AlignedBuffer(int(n))
			if _, err := s.dev.ReadAt(buf, int64(e.Phys+off)); err != nil {
				r.errorf("read %s/%s at %d: %v", k.Collection, k.Object, e.Logical+off, err)
				continue
			}
			for b := uint64(0); b < n; b += bs {
				blk := buf[b : b+bs]
				if d, ok := s.overlay.get(e.Phys + off + b); ok {
					blk = d
				}
				idx := (off + b) / bs
				if got := checksum(blk); got != e.Csums[idx] {
					r.CorruptBlocks++
					s.m.corruptions.Add(1)
					r.errorf("%v", &CorruptionError{Collection: k.Collection, Object: k.Object, Offset: int64(e.Logical + off + b),
						Phys: int64(e.Phys + off + b), Detail: fmt.Sprintf("crc32c %#08x, expected %#08x", got, e.Csums[idx])})
				}
			}
		}
	}
}

// Repair releases leaked space and deletes orphaned omap entries and extent shards, then checks
// again. It fixes only
// what is safe to fix; other inconsistencies stay in the returned report.
func (s *Store) Repair(ctx context.Context) (*FsckReport, error) {
	leave, err := s.enter()
	if err != nil {
		return nil, err
	}
	defer leave()
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	s.inflight.Wait() // groups waiting for their sync hold space not yet released
	s.growMu.Lock()   // after the syncs: a WAL write may need to grow the metadata
	defer s.growMu.Unlock()
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.gate.Lock()
	r, err := s.fsckLocked(ctx, false)
	if err != nil {
		s.gate.Unlock()
		return nil, err
	}
	var errs []error
	if len(r.Leaked) > 0 {
		if err := s.alloc.Release(r.Leaked); err != nil {
			errs = append(errs, fmt.Errorf("release leaked space: %w", err))
		}
	}
	if len(r.OrphanOmapNids) > 0 {
		b := s.db.NewBatch()
		for _, nid := range r.OrphanOmapNids {
			lo, hi := kv.OmapSpan(nid, "")
			errs = append(errs, b.DeleteRange(lo, hi, nil))
		}
		errs = append(errs, b.Commit(pebble.Sync), b.Close())
	}
	if len(r.OrphanExtentNids) > 0 {
		b := s.db.NewBatch()
		for _, nid := range r.OrphanExtentNids {
			lo, hi := kv.ExtentShardSpan(nid)
			errs = append(errs, b.DeleteRange(lo, hi, nil))
		}
		errs = append(errs, b.Commit(pebble.Sync), b.Close())
	}
	s.gate.Unlock()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("repair: %w", err)
	}
	s.gate.RLock()
	defer s.gate.RUnlock()
	return s.fsckLocked(ctx, false)
}
