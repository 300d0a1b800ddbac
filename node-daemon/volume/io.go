package volume

import (
	"context"
	"errors"
	"fmt"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
)

// checkRange verifies that [off, off+length) lies inside the volume.
func (v *vol) checkRange(off, length int64) error {
	size := v.size.Load()
	if off < 0 || length < 0 || off > size || length > size-off {
		return fmt.Errorf("range [%d, +%d) is outside volume %q of %d bytes: %w", off, length, v.id, size, objstore.ErrInvalid)
	}
	return nil
}

// Write writes data at off as one durable transaction.
func (m *Manager) Write(ctx context.Context, id string, off int64, data []byte) error {
	v, err := m.lookup(id)
	if err != nil {
		return err
	}
	v.gate.RLock()
	defer v.gate.RUnlock()
	if err := v.checkRange(off, int64(len(data))); err != nil {
		return err
	}
	if len(data) == 0 {
		return nil
	}
	segs := split(off, int64(len(data)), v.stripeSize)
	ops := make([]objstore.Op, 0, len(segs))
	for _, s := range segs {
		ops = append(ops, objstore.Write(v.coll, StripeName(s.stripe), s.off, data[s.pos:s.pos+s.length]))
	}
	if err := m.store.Commit(ctx, ops); err != nil {
		return fmt.Errorf("volume: write %q at %d (%d bytes): %w", id, off, len(data), err)
	}
	return nil
}

// Read reads length bytes at off. Unwritten ranges read as zeros.
func (m *Manager) Read(ctx context.Context, id string, off, length int64) ([]byte, error) {
	return m.read(ctx, id, off, length, m.store.Read)
}

// ReadNoCache is Read for bulk reads that must not displace the data the volume's users read (a
// replica's copy and comparison, a scrub): the store reads it without its data cache when it can
// (objstore.NoCacheReader), verifying it as Read does; otherwise it is Read.
func (m *Manager) ReadNoCache(ctx context.Context, id string, off, length int64) ([]byte, error) {
	read := m.store.Read
	if nc, ok := m.store.(objstore.NoCacheReader); ok {
		read = nc.ReadNoCache
	}
	return m.read(ctx, id, off, length, read)
}

// read reads length bytes at off of volume id through read, under the volume's gate.
func (m *Manager) read(ctx context.Context, id string, off, length int64, read func(ctx context.Context, c, o string, off, length int64) ([]byte, error)) ([]byte, error) {
	v, err := m.lookup(id)
	if err != nil {
		return nil, err
	}
	v.gate.RLock()
	defer v.gate.RUnlock()
	if err := v.checkRange(off, length); err != nil {
		return nil, err
	}
	return m.readStripes(ctx, v, off, length, read)
}

// readStripes reads [off, off+length) of v's stripes, which checkRange accepted, with read;
// unwritten ranges read as zeros. REQUIRES: v.gate held shared.
func (m *Manager) readStripes(ctx context.Context, v *vol, off, length int64, read func(ctx context.Context, c, o string, off, length int64) ([]byte, error)) ([]byte, error) {
	segs := split(off, length, v.stripeSize)
	var buf []byte
	for _, s := range segs {
		data, err := read(ctx, v.coll, StripeName(s.stripe), s.off, s.length)
		if err == nil && len(segs) == 1 && int64(len(data)) == length {
			return data, nil // the common case: one stripe, complete: no copy
		}
		if buf == nil {
			buf = make([]byte, length)
		}
		if errors.Is(err, objstore.ErrNotFound) {
			continue // never written: zeros
		}
		if err != nil {
			return nil, fmt.Errorf("volume: read %q at %d: %w", v.id, off+s.pos, err)
		}
		if int64(len(data)) > s.length {
			return nil, fmt.Errorf("volume: read %q at %d: store returned %d bytes for %d", v.id, off+s.pos, len(data), s.length)
		}
		copy(buf[s.pos:], data) // a short read leaves zeros past the stripe object's end
	}
	if buf == nil {
		buf = make([]byte, length) // a zero-length read
	}
	return buf, nil
}

// Flush returns once every I/O on volume id that started before it has finished. Writes are
// durable when acknowledged, so this is a barrier, not a sync.
func (m *Manager) Flush(ctx context.Context, id string) error {
	v, err := m.lookup(id)
	if err != nil {
		return err
	}
	v.gate.Lock()
	v.gate.Unlock() //nolint:staticcheck // an empty critical section is the barrier
	return ctx.Err()
}

// Trim discards [off, off+length): whole stripes are removed, partial ones zeroed.
func (m *Manager) Trim(ctx context.Context, id string, off, length int64) error {
	v, err := m.lookup(id)
	if err != nil {
		return err
	}
	v.gate.RLock()
	defer v.gate.RUnlock()
	if err := v.checkRange(off, length); err != nil {
		return err
	}
	var ops []objstore.Op
	for _, s := range split(off, length, v.stripeSize) {
		name := StripeName(s.stripe)
		st, err := m.store.Stat(ctx, v.coll, name)
		if errors.Is(err, objstore.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("volume: trim %q: stat %s: %w", id, name, err)
		}
		// A stripe is removed only when the trim covers all of it (up to the volume's end for the
		// last one): removing it for a range that merely covers its current size could drop a
		// concurrent write past that size but outside the trimmed range.
		whole := s.off == 0 && (s.length == v.stripeSize || s.stripe*v.stripeSize+s.length == v.size.Load())
		switch {
		case whole:
			ops = append(ops, objstore.Remove(v.coll, name))
		case s.off < st.Size:
			ops = append(ops, objstore.Zero(v.coll, name, s.off, min(s.length, st.Size-s.off)))
		}
	}
	if len(ops) == 0 {
		return nil
	}
	if err := m.store.Commit(ctx, ops); err != nil {
		return fmt.Errorf("volume: trim %q at %d (%d bytes): %w", id, off, length, err)
	}
	return nil
}
