package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/kv"
	"github.com/cobaltstore/cobalt/storage-engine/onode"
	"github.com/cockroachdb/pebble/v2"
)

// ObjectStat describes an object.
type ObjectStat struct {
	// Size is the logical size in bytes.
	Size uint64
	// Allocated is the device space the object maps (shared extents count for every sharer).
	Allocated uint64
	// Xattrs is the number of extended attributes.
	Xattrs int
}

// withOnode runs fn with the committed onode of c/o while holding the gate shared, so the space it
// maps is not freed and reused until fn returns.
func (s *Store) withOnode(ctx context.Context, c, o string, fn func(*onode.Onode) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := kv.ValidateCollection(c); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := kv.ValidateObject(o); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	s.gate.RLock()
	defer s.gate.RUnlock()
	if _, ok := s.pub.colls[c]; !ok {
		return fmt.Errorf("collection %q: %w", c, ErrNotFound)
	}
	on, err := s.loadOnode(OnodeKey{c, o})
	if err != nil {
		return err
	}
	if on == nil {
		return fmt.Errorf("object %s/%s: %w", c, o, ErrNotFound)
	}
	return fn(on)
}

// Read returns the object's bytes in [off, off+length), clipped to its size; length 0 reads to the
// end. Every checksum block read is verified: a mismatch returns a CorruptionError and no data.
// The buffer returned is new and belongs to the caller; ReadInto reads into one the caller owns.
func (s *Store) Read(ctx context.Context, c, o string, off, length uint64) ([]byte, error) {
	return s.read(ctx, c, o, off, length, nil, true)
}

// ReadInto is Read into the caller's buffer: it fills buf with the object's bytes at off and
// returns how many it filled, len(buf), or fewer when the range crosses the object's end (0 at or
// past it); buf past that is left as it was. Holes read as zeros. It goes through the buffer
// cache and verifies every checksum block it reads as Read does; on an error it returns 0 and
// zeroes the part of buf it may have filled, so no unverified data is left there. ReadInto keeps
// no reference to buf (what the buffer cache keeps is a copy).
//
// A buf whose first byte sits at a multiple of blockdev.Alignment (blockdev.AlignedBuffer; in
// practice any Go allocation of a multiple of 4 KiB) lets whole checksum blocks go from the device
// straight into it. Any other buf is filled through the store's pooled aligned buffers, at the
// cost of a copy but without an allocation.
func (s *Store) ReadInto(ctx context.Context, c, o string, off uint64, buf []byte) (int, error) {
	return s.readInto(ctx, c, o, off, buf, true)
}

// ReadNoCache is Read for bulk reads that must not displace the data cache, such as a replica's
// copy or comparison or a scrub: it reads the device (and the deferred writes not yet applied in
// place), verifying every checksum block as Read does, and neither looks in, fills nor evicts
// from the buffer cache. It returns the same committed content as Read, so a block that rotted
// on the device fails it even while a good copy is cached.
func (s *Store) ReadNoCache(ctx context.Context, c, o string, off, length uint64) ([]byte, error) {
	return s.read(ctx, c, o, off, length, nil, false)
}

// ReadNoCacheInto is ReadNoCache into the caller's buffer, as ReadInto is to Read.
func (s *Store) ReadNoCacheInto(ctx context.Context, c, o string, off uint64, buf []byte) (int, error) {
	return s.readInto(ctx, c, o, off, buf, false)
}

// readInto is ReadInto, through the buffer cache when cached.
func (s *Store) readInto(ctx context.Context, c, o string, off uint64, buf []byte, cached bool) (int, error) {
	if buf == nil {
		buf = []byte{} // read's nil means "allocate"
	}
	out, err := s.read(ctx, c, o, off, 0, buf, cached)
	return len(out), err
}

// read reads the object's bytes in [off, off+length), clipped to its size (length 0: to the end),
// through the buffer cache when cached. With into nil it returns them in a new buffer; otherwise
// it reads [off, off+len(into)) (length is ignored), clipped the same way, into into and returns
// the part of into it filled, and on an error zeroes that part.
func (s *Store) read(ctx context.Context, c, o string, off, length uint64, into []byte, cached bool) ([]byte, error) {
	leave, err := s.enter()
	if err != nil {
		return nil, err
	}
	defer leave()
	start := time.Now()
	var out []byte
	err = s.withOnode(ctx, c, o, func(on *onode.Onode) error {
		end := on.Size
		switch {
		case into != nil:
			if off < on.Size {
				end = min(end, off+uint64(len(into)))
			}
		case off >= on.Size:
			out = []byte{}
			return nil
		case length > 0 && length < on.Size-off:
			end = off + length
		}
		if off >= end {
			out = into[:0]
			return nil
		}
		if into != nil {
			out = into[:end-off]
		} else {
			out = newReadBuffer(end - off)
		}
		var err error
		if cached {
			err = s.caches.read(s, OnodeKey{c, o}, on, off, out)
		} else {
			err = s.readRange(OnodeKey{c, o}, on, off, out)
		}
		if err != nil && into != nil {
			clear(out)
		}
		return err
	})
	s.m.readLatency.observe(time.Since(start))
	if err != nil {
		s.m.readErrors.Add(1)
		return nil, err
	}
	s.m.reads.Add(1)
	s.m.bytesRead.Add(int64(len(out)))
	return out, nil
}

// readRange fills out with the object's bytes at [off, off+len(out)): the checksum blocks its
// extents map are read from the device (or the deferred overlay) and verified, and holes are
// zeroed. On an error, out may hold part of the range: the callers return no data then.
// REQUIRES: s.gate held shared.
func (s *Store) readRange(k OnodeKey, on *onode.Onode, off uint64, out []byte) error {
	bs := s.csumBlock
	end := off + uint64(len(out))
	a, b := alignDown(off, bs), alignUp(end, bs)
	overlay := !s.overlay.empty()
	pos := off // out is filled up to pos
	for i := on.Find(a); i < len(on.Extents) && on.Extents[i].Logical < b; i++ {
		e := on.Extents[i]
		lo, hi := max(a, e.Logical), min(b, e.LogicalEnd())
		if lo > pos {
			clear(out[pos-off : min(lo, end)-off]) // a hole
		}
		if err := s.readExtent(k, e, lo, hi, off, out, overlay); err != nil {
			return err
		}
		pos = max(pos, min(hi, end))
	}
	if pos < end {
		clear(out[pos-off:]) // a hole up to the end
	}
	return nil
}

// readExtent fills the part of out (the object's bytes at [off, off+len(out))) that [lo, hi), whole
// checksum blocks of extent e, covers. When that part is whole blocks in aligned memory and no
// block of it has a deferred write pending, the device reads straight into out; otherwise it
// reads through pooled aligned buffers, a piece at a time, and copies.
// REQUIRES: s.gate held shared.
func (s *Store) readExtent(k OnodeKey, e onode.Extent, lo, hi, off uint64, out []byte, overlay bool) error {
	bs := s.csumBlock
	end := off + uint64(len(out))
	// Look in the overlay before reading the device: an entry can only disappear (after the
	// flusher wrote it in place) while the gate is held, never appear.
	var pending map[uint64][]byte
	if overlay {
		for l := lo; l < hi; l += bs {
			if d, ok := s.overlay.get(e.Phys + (l - e.Logical)); ok {
				if pending == nil {
					pending = map[uint64][]byte{}
				}
				pending[l] = d
			}
		}
	}
	if len(pending) == 0 && lo >= off && hi <= end && blockdev.IsAligned(out[lo-off:], blockdev.Alignment) {
		dst := out[lo-off : hi-off]
		if _, err := s.dev.ReadAt(dst, int64(e.Phys+(lo-e.Logical))); err != nil {
			return fmt.Errorf("read %s/%s at %d: %w", k.Collection, k.Object, lo, err)
		}
		return s.verifyBlocks(k, e, lo, hi, dst, nil, off, out, true)
	}
	piece := uint64(s.bounce.piece)
	for p := lo; p < hi; p += piece {
		q := min(hi, p+piece)
		buf, h := s.bounce.get(int(q - p))
		err := s.readPiece(k, e, p, q, buf, pending, off, out)
		s.bounce.put(h)
		if err != nil {
			return err
		}
	}
	return nil
}

// readPiece reads the checksum blocks [p, q) of extent e into buf (unless the overlay holds every
// one of them), verifies them and copies their part inside [off, off+len(out)) to out.
// REQUIRES: s.gate held shared.
func (s *Store) readPiece(k OnodeKey, e onode.Extent, p, q uint64, buf []byte, pending map[uint64][]byte, off uint64, out []byte) error {
	device := pending == nil
	for l := p; l < q && !device; l += s.csumBlock {
		_, ok := pending[l]
		device = !ok
	}
	if device {
		if _, err := s.dev.ReadAt(buf, int64(e.Phys+(p-e.Logical))); err != nil {
			return fmt.Errorf("read %s/%s at %d: %w", k.Collection, k.Object, p, err)
		}
	}
	return s.verifyBlocks(k, e, p, q, buf, pending, off, out, false)
}

// verifyBlocks checks the checksum blocks [p, q) of extent e, each the pending deferred write of
// its block or else its bytes in src (the device's bytes of [p, q)), and unless inPlace (src is
// already out's memory) copies their part inside [off, off+len(out)) to out.
func (s *Store) verifyBlocks(k OnodeKey, e onode.Extent, p, q uint64, src []byte, pending map[uint64][]byte, off uint64, out []byte, inPlace bool) error {
	bs := s.csumBlock
	end := off + uint64(len(out))
	for l := p; l < q; l += bs {
		blk, ok := pending[l]
		if !ok {
			blk = src[l-p : l-p+bs]
		}
		want := e.Csums[(l-e.Logical)/bs]
		if got := checksum(blk); got != want {
			s.m.corruptions.Add(1)
			return &CorruptionError{Collection: k.Collection, Object: k.Object, Offset: int64(l),
				Phys: int64(e.Phys + (l - e.Logical)), Detail: fmt.Sprintf("crc32c %#08x, expected %#08x", got, want)}
		}
		if cl, ch := max(l, off), min(l+bs, end); cl < ch && !inPlace {
			copy(out[cl-off:ch-off], blk[cl-l:ch-l])
		}
	}
	return nil
}

// Stat returns the object's size and allocation.
func (s *Store) Stat(ctx context.Context, c, o string) (ObjectStat, error) {
	leave, err := s.enter()
	if err != nil {
		return ObjectStat{}, err
	}
	defer leave()
	var st ObjectStat
	err = s.withOnode(ctx, c, o, func(on *onode.Onode) error {
		st.Size, st.Xattrs = on.Size, len(on.Xattrs)
		for _, e := range on.Extents {
			st.Allocated += e.Length
		}
		return nil
	})
	return st, err
}

// Exists reports whether the object exists (false with a nil error if it does not).
func (s *Store) Exists(ctx context.Context, c, o string) (bool, error) {
	leave, err := s.enter()
	if err != nil {
		return false, err
	}
	defer leave()
	err = s.withOnode(ctx, c, o, func(*onode.Onode) error { return nil })
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// GetAttr returns one extended attribute (ErrNotFound if absent).
func (s *Store) GetAttr(ctx context.Context, c, o, name string) ([]byte, error) {
	leave, err := s.enter()
	if err != nil {
		return nil, err
	}
	defer leave()
	var v []byte
	err = s.withOnode(ctx, c, o, func(on *onode.Onode) error {
		val, ok := on.Xattrs[name]
		if !ok {
			return fmt.Errorf("xattr %q of %s/%s: %w", name, c, o, ErrNotFound)
		}
		v = slices.Clone(val)
		if v == nil {
			v = []byte{}
		}
		return nil
	})
	return v, err
}

// GetAttrs returns every extended attribute.
func (s *Store) GetAttrs(ctx context.Context, c, o string) (map[string][]byte, error) {
	leave, err := s.enter()
	if err != nil {
		return nil, err
	}
	defer leave()
	out := map[string][]byte{}
	err = s.withOnode(ctx, c, o, func(on *onode.Onode) error {
		for k, v := range on.Xattrs {
			out[k] = append([]byte{}, v...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// OmapGetHeader returns the omap header (nil if none was set).
func (s *Store) OmapGetHeader(ctx context.Context, c, o string) ([]byte, error) {
	leave, err := s.enter()
	if err != nil {
		return nil, err
	}
	defer leave()
	var h []byte
	err = s.withOnode(ctx, c, o, func(on *onode.Onode) error {
		if on.OmapHeader != nil {
			h = append([]byte{}, on.OmapHeader...)
		}
		return nil
	})
	return h, err
}

// OmapGet returns the values of the given omap keys; absent keys are left out of the map.
func (s *Store) OmapGet(ctx context.Context, c, o string, keys ...string) (map[string][]byte, error) {
	leave, err := s.enter()
	if err != nil {
		return nil, err
	}
	defer leave()
	var nid uint64
	if err := s.withOnode(ctx, c, o, func(on *onode.Onode) error { nid = on.Nid; return nil }); err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(keys))
	for _, k := range keys {
		v, cl, err := s.db.Get(kv.OmapKey(nid, k))
		if errors.Is(err, pebble.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("omap get %s/%s key %q: %w", c, o, k, err)
		}
		out[k] = append([]byte{}, v...)
		if err := cl.Close(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// OmapIterate calls fn for each omap entry with key >= start, in key order, until fn returns false.
// value is only valid during the call; fn must not call Close.
func (s *Store) OmapIterate(ctx context.Context, c, o, start string, fn func(key string, value []byte) bool) error {
	leave, err := s.enter()
	if err != nil {
		return err
	}
	defer leave()
	var nid uint64
	if err := s.withOnode(ctx, c, o, func(on *onode.Onode) error { nid = on.Nid; return nil }); err != nil {
		return err
	}
	lo, hi := kv.OmapSpan(nid, start)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return fmt.Errorf("omap iterate %s/%s: %w", c, o, err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		if err := ctx.Err(); err != nil {
			return errors.Join(err, it.Close())
		}
		_, key, err := kv.ParseOmapKey(it.Key())
		if err != nil {
			return errors.Join(corruptMeta("%v", err), it.Close())
		}
		if !fn(key, it.Value()) {
			break
		}
	}
	return it.Close()
}

// ListObjects returns up to limit object names of collection c (limit <= 0: all), in byte order,
// starting at start (inclusive), and the name to pass as start to continue ("" at the end).
func (s *Store) ListObjects(ctx context.Context, c, start string, limit int) ([]string, string, error) {
	leave, err := s.enter()
	if err != nil {
		return nil, "", err
	}
	defer leave()
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if err := kv.ValidateCollection(c); err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	s.gate.RLock()
	_, ok := s.pub.colls[c]
	s.gate.RUnlock()
	if !ok {
		return nil, "", fmt.Errorf("collection %q: %w", c, ErrNotFound)
	}
	lo, hi := kv.OnodeSpan(c, start)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, "", fmt.Errorf("list %q: %w", c, err)
	}
	var names []string
	next := ""
	for ok := it.First(); ok; ok = it.Next() {
		_, name, err := kv.ParseOnodeKey(it.Key())
		if err != nil {
			return nil, "", errors.Join(corruptMeta("%v", err), it.Close())
		}
		if limit > 0 && len(names) == limit {
			next = name
			break
		}
		names = append(names, name)
	}
	if err := it.Close(); err != nil {
		return nil, "", fmt.Errorf("list %q: %w", c, err)
	}
	return names, next, nil
}

// CollectionExists reports whether collection c exists.
func (s *Store) CollectionExists(ctx context.Context, c string) (bool, error) {
	leave, err := s.enter()
	if err != nil {
		return false, err
	}
	defer leave()
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.gate.RLock()
	defer s.gate.RUnlock()
	_, ok := s.pub.colls[c]
	return ok, nil
}

// newReadBuffer returns the zeroed buffer a Read of n bytes returns: aligned memory when n is a
// whole number of alignment units, so that block-aligned reads go from the device straight into
// it.
func newReadBuffer(n uint64) []byte {
	if n%blockdev.Alignment == 0 {
		return blockdev.AlignedBuffer(int(n))
	}
	return make([]byte, n)
}
