package store

import (
	"fmt"
	"hash/crc32"

	"github.com/cobaltstore/cobalt/storage-engine/alloc"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/kv"
	"github.com/cobaltstore/cobalt/storage-engine/onode"
)

// The write path.
//
// Extents are aligned to the allocation unit, logically and physically. A write either
//   - goes in place through the deferred log, when it is smaller than PreferDeferredSize and every
//     checksum block it touches is mapped to unshared space (a block this group itself wrote is
//     patched in its pending buffer instead of being logged), or
//   - goes copy-on-write: the units it covers are read (only the partial head and tail units),
//     merged with the new bytes, written to newly allocated space, and remapped; the old units
//     lose one reference.
//
// Invariant: mapped bytes at or past an object's size read as zeros (truncate zeroes the tail of
// the last unit), so growing an object never exposes old data.

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

func alignDown(v, a uint64) uint64 { return v / a * a }
func alignUp(v, a uint64) uint64   { return (v + a - 1) / a * a }

func (g *group) write(k OnodeKey, off uint64, data []byte) error {
	o, err := g.mutOnode(k, true)
	if err != nil {
		return err
	}
	if len(data) == 0 {
		return nil
	}
	end := off + uint64(len(data))
	if end < off {
		return fmt.Errorf("write at %d of %d bytes overflows: %w", off, len(data), ErrInvalid)
	}
	if err := g.writeData(k, o, off, data); err != nil {
		return err
	}
	if end > o.Size {
		g.setSize(o, end)
	}
	return nil
}

// writeData stores data at off without changing the size.
func (g *group) writeData(k OnodeKey, o *onode.Onode, off uint64, data []byte) error {
	if len(data) < g.s.opts.PreferDeferredSize && g.inPlaceOK(o, off, off+uint64(len(data))) {
		return g.writeInPlace(k, o, off, data)
	}
	return g.writeCOW(k, o, off, data)
}

// inPlaceOK reports whether every checksum block of [off, end) is mapped to unshared space.
func (g *group) inPlaceOK(o *onode.Onode, off, end uint64) bool {
	bs := g.s.csumBlock
	for b := alignDown(off, bs); b < end; b += bs {
		i := o.Find(b)
		if i >= len(o.Extents) || o.Extents[i].Logical > b {
			return false
		}
		e := o.Extents[i]
		if g.refs(alignDown(e.Phys+(b-e.Logical), g.s.unit)) != 1 {
			return false
		}
	}
	return true
}

func (g *group) writeInPlace(k OnodeKey, o *onode.Onode, off uint64, data []byte) error {
	bs := g.s.csumBlock
	end := off + uint64(len(data))
	for b := alignDown(off, bs); b < end; b += bs {
		i := o.Find(b)
		e := &o.Extents[i]
		idx := (b - e.Logical) / bs
		phys := e.Phys + (b - e.Logical)
		lo, hi := max(off, b), min(end, b+bs)
		if staged, ok := g.blocks[phys]; ok {
			copy(staged[lo-b:hi-b], data[lo-off:hi-off])
			o.SetCsum(i, idx, checksum(staged))
			o.MarkDirty(b, bs)
			continue
		}
		var nb []byte
		if whole := data[lo-off : hi-off : hi-off]; lo == b && hi == b+bs && blockdev.IsAligned(whole, blockdev.Alignment) {
			// A whole block of the transaction's aligned copy (Transaction.Write) or of data handed
			// over (WriteOwned), which nothing writes to again: logged, kept in the overlay and
			// applied as it is, not copied.
			nb = whole
		} else {
			nb = blockdev.AlignedBuffer(int(bs))
			if lo > b || hi < b+bs {
				cur, err := g.readBlock(k, b, phys, e.Csums[idx])
				if err != nil {
					return err
				}
				copy(nb, cur)
			}
			copy(nb[lo-b:hi-b], data[lo-off:hi-off])
		}
		o.SetCsum(i, idx, checksum(nb))
		o.MarkDirty(b, bs)
		if old, ok := g.defers[phys]; ok {
			if err := g.batch.Delete(kv.DeferredKey(old.seq), nil); err != nil {
				return err
			}
		} else if old, ok := g.s.overlay.getEntry(phys); ok {
			if err := g.batch.Delete(kv.DeferredKey(old.seq), nil); err != nil {
				return err
			}
		}
		seq := g.nextSeq
		g.nextSeq++
		// Encoded straight into the batch: no intermediate copy of the block.
		rec := kv.Deferred{Phys: phys, Data: nb}
		key := kv.DeferredKey(seq)
		op := g.batch.SetDeferred(len(key), rec.Size())
		copy(op.Key, key)
		rec.AppendTo(op.Value[:0])
		if err := op.Finish(); err != nil {
			return err
		}
		g.defers[phys] = deferredEntry{seq: seq, data: nb}
	}
	return nil
}

func (g *group) writeCOW(k OnodeKey, o *onode.Onode, off uint64, data []byte) error {
	unit := g.s.unit
	end := off + uint64(len(data))
	ua, ub := alignDown(off, unit), alignUp(end, unit)
	buf := blockdev.AlignedBuffer(int(ub - ua))
	if off > ua {
		if err := g.readLogical(k, o, ua, buf[:unit]); err != nil {
			return err
		}
	}
	if end < ub && (ub-unit >= ua+unit || off == ua) {
		if err := g.readLogical(k, o, ub-unit, buf[ub-unit-ua:]); err != nil {
			return err
		}
	}
	copy(buf[off-ua:], data)
	exts, err := g.allocate(ub - ua)
	if err != nil {
		return fmt.Errorf("write %s/%s at %d: %w", k.Collection, k.Object, off, err)
	}
	for _, r := range o.Punch(ua, ub-ua, g.s.csumBlock) {
		g.deref(r)
	}
	g.mapNew(o, ua, buf, exts)
	return nil
}

// mapNew maps buf at logical offset at onto the freshly allocated exts and queues the writes.
func (g *group) mapNew(o *onode.Onode, at uint64, buf []byte, exts []alloc.Extent) {
	bs := g.s.csumBlock
	pos := uint64(0)
	for _, x := range exts {
		n := uint64(x.Length)
		piece := buf[pos : pos+n]
		cs := make([]uint32, n/bs)
		for i := range cs {
			blk := piece[uint64(i)*bs : uint64(i+1)*bs]
			cs[i] = checksum(blk)
			g.blocks[uint64(x.Offset)+uint64(i)*bs] = blk
		}
		o.Insert(onode.Extent{Logical: at + pos, Phys: uint64(x.Offset), Length: n, Csums: cs})
		g.writes = append(g.writes, pendingWrite{phys: uint64(x.Offset), buf: piece, txn: g.txn})
		pos += n
	}
}

// readBlock returns the current contents of the checksum block at device offset phys (logical
// offset logical of object k), verified against want.
//
// Newest first: a deferred write staged by this group supersedes prepared data the group mapped
// at the same block (the prepared space was new, so any deferred write to it came later); the
// group's own copy-on-write blocks are patched in place and never have a deferred write.
func (g *group) readBlock(k OnodeKey, logical, phys uint64, want uint32) ([]byte, error) {
	if b, ok := g.blocks[phys]; ok {
		return b, nil
	}
	if e, ok := g.defers[phys]; ok {
		return e.data, nil
	}
	if b, ok := g.preparedBlock(phys); ok {
		return b, nil
	}
	b, err := g.s.readPhysBlock(phys)
	if err != nil {
		return nil, fmt.Errorf("read %s/%s at %d: %w", k.Collection, k.Object, logical, err)
	}
	if got := checksum(b); got != want {
		g.s.m.corruptions.Add(1)
		return nil, &CorruptionError{Collection: k.Collection, Object: k.Object, Offset: int64(logical), Phys: int64(phys),
			Detail: fmt.Sprintf("crc32c %#08x, expected %#08x", got, want)}
	}
	return b, nil
}

// readLogical fills dst with the object's bytes at [off, off+len(dst)) (block aligned) as the group
// sees them; unmapped blocks read as zeros.
func (g *group) readLogical(k OnodeKey, o *onode.Onode, off uint64, dst []byte) error {
	bs := g.s.csumBlock
	for b := off; b < off+uint64(len(dst)); b += bs {
		d := dst[b-off : b-off+bs]
		i := o.Find(b)
		if i >= len(o.Extents) || o.Extents[i].Logical > b {
			clear(d)
			continue
		}
		e := o.Extents[i]
		idx := (b - e.Logical) / bs
		cur, err := g.readBlock(k, b, e.Phys+(b-e.Logical), e.Csums[idx])
		if err != nil {
			return err
		}
		copy(d, cur)
	}
	return nil
}

// readPhysBlock reads one checksum block from the overlay or the device (unverified).
func (s *Store) readPhysBlock(phys uint64) ([]byte, error) {
	if d, ok := s.overlay.get(phys); ok {
		return d, nil
	}
	b := blockdev.AlignedBuffer(int(s.csumBlock))
	if _, err := s.dev.ReadAt(b, int64(phys)); err != nil {
		return nil, err
	}
	return b, nil
}

// mapped reports whether any block of [off, end) is mapped.
func mapped(o *onode.Onode, off, end uint64) bool {
	i := o.Find(off)
	return i < len(o.Extents) && o.Extents[i].Logical < end
}

func (g *group) zero(k OnodeKey, off, length uint64) error {
	o, err := g.mutOnode(k, true)
	if err != nil {
		return err
	}
	end := off + length
	if end < off {
		return fmt.Errorf("zero at %d of %d bytes overflows: %w", off, length, ErrInvalid)
	}
	if length == 0 {
		return nil
	}
	unit := g.s.unit
	fa, fb := alignUp(off, unit), alignDown(end, unit) // whole units inside the range
	if fa < fb {
		for _, r := range o.Punch(fa, fb-fa, g.s.csumBlock) {
			g.deref(r)
		}
		if off < fa && mapped(o, off, fa) {
			if err := g.writeData(k, o, off, make([]byte, fa-off)); err != nil {
				return err
			}
		}
		if fb < end && mapped(o, fb, end) {
			if err := g.writeData(k, o, fb, make([]byte, end-fb)); err != nil {
				return err
			}
		}
	} else if mapped(o, off, end) {
		if err := g.writeData(k, o, off, make([]byte, length)); err != nil {
			return err
		}
	}
	if end > o.Size {
		g.setSize(o, end)
	}
	return nil
}

func (g *group) truncate(k OnodeKey, size uint64) error {
	o, err := g.mutOnode(k, false)
	if err != nil {
		return err
	}
	if size < o.Size {
		unit := g.s.unit
		cut := alignUp(size, unit)
		if n := len(o.Extents); n > 0 && o.Extents[n-1].LogicalEnd() > cut {
			for _, r := range o.Punch(cut, o.Extents[n-1].LogicalEnd()-cut, g.s.csumBlock) {
				g.deref(r)
			}
		}
		if size < cut && mapped(o, size, cut) {
			if err := g.writeData(k, o, size, make([]byte, cut-size)); err != nil {
				return err
			}
		}
	}
	g.setSize(o, size)
	return nil
}
