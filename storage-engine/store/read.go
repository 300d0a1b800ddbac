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
func (s *Store) Read(ctx context.Context, c, o string, off, length uint64) ([]byte, error) {
	return s.read(ctx, c, o, off, length, true)
}

// ReadNoCache is Read for bulk reads that must not displace the data cache, such as a replica's
// copy or comparison or a scrub: it reads the device (and the deferred writes not yet applied in
// place), verifying every checksum block as Read does, and neither looks in, fills nor evicts
// from the buffer cache. It returns the same committed content as Read, so a block that rotted
// on the device fails it even while a good copy is cached.
func (s *Store) ReadNoCache(ctx context.Context, c, o string, off, length uint64) ([]byte, error) {
	return s.read(ctx, c, o, off, length, false)
}

// read is Read, through the buffer cache when cached.
func (s *Store) read(ctx context.Context, c, o string, off, length uint64, cached bool) ([]byte, error) {
	leave, err := s.enter()
	if err != nil {
		return nil, err
	}
	defer leave()
	start := time.Now()
	var out []byte
	err = s.withOnode(ctx, c, o, func(on *onode.Onode) error {
		if off >= on.Size {
			out = []byte{}
			return nil
		}
		end := on.Size
		if length > 0 && length < on.Size-off {
			end = off + length
		}
		out = newReadBuffer(end - off)
		if !cached {
			return s.readRange(OnodeKey{c, o}, on, off, out)
		}
		return s.caches.read(s, OnodeKey{c, o}, on, off, out)
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

// readRange fills out with the object's bytes at [off, off+len(out)).
// REQUIRES: s.gate held shared.
func (s *Store) readRange(k OnodeKey, on *onode.Onode, off uint64, out []byte) error {
	bs := s.csumBlock
	end := off + uint64(len(out))
	a, b := alignDown(off, bs), alignUp(end, bs)
	overlay := !s.overlay.empty()
	for i := on.Find(a); i < len(on.Extents) && on.Extents[i].Logical < b; i++ {
		e := on.Extents[i]
		lo, hi := max(a, e.Logical), min(b, e.LogicalEnd())
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
		var buf []byte
		// direct: the blocks land in out itself (whole blocks inside [off, end), aligned memory,
		// none pending), so they need no copy; on a checksum mismatch Read returns no data.
		direct := false
		if uint64(len(pending)) < (hi-lo)/bs {
			if len(pending) == 0 && lo >= off && hi <= end && blockdev.IsAligned(out[lo-off:], blockdev.Alignment) {
				buf, direct = out[lo-off:hi-off], true
			} else {
				buf = s.readBuf(int(hi - lo))
				defer s.putReadBuf(buf)
			}
			if _, err := s.dev.ReadAt(buf, int64(e.Phys+(lo-e.Logical))); err != nil {
				return fmt.Errorf("read %s/%s at %d: %w", k.Collection, k.Object, lo, err)
			}
		}
		for l := lo; l < hi; l += bs {
			blk, ok := pending[l]
			if !ok {
				blk = buf[l-lo : l-lo+bs]
			}
			want := e.Csums[(l-e.Logical)/bs]
			if got := checksum(blk); got != want {
				s.m.corruptions.Add(1)
				return &CorruptionError{Collection: k.Collection, Object: k.Object, Offset: int64(l),
					Phys: int64(e.Phys + (l - e.Logical)), Detail: fmt.Sprintf("crc32c %#08x, expected %#08x", got, want)}
			}
			// Copy the part of the block inside [off, end).
			cl, ch := max(l, off), min(l+bs, end)
			if cl < ch && !direct {
				copy(out[cl-off:ch-off], blk[cl-l:ch-l])
			}
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

// readBuf returns an aligned buffer of n bytes; single checksum blocks, the common random-read
// size, come from a pool to spare the garbage collector.
func (s *Store) readBuf(n int) []byte {
	if n == int(s.csumBlock) {
		if b, ok := s.blockPool.Get().(*[]byte); ok {
			return *b
		}
	}
	return blockdev.AlignedBuffer(n)
}

// putReadBuf returns a buffer from readBuf to the pool.
func (s *Store) putReadBuf(b []byte) {
	if len(b) == int(s.csumBlock) {
		s.blockPool.Put(&b)
	}
}
