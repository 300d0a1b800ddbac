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
	return m.write(ctx, id, off, data, objstore.Write)
}

// WriteOwned is Write with data handed over (objstore.WriteOwned): the caller does not modify
// data from the call on, not even after it returns, and the store may write from it without a
// copy.
func (m *Manager) WriteOwned(ctx context.Context, id string, off int64, data []byte) error {
	return m.write(ctx, id, off, data, objstore.WriteOwned)
}

// write is Write with the op constructor of each stripe's part.
func (m *Manager) write(ctx context.Context, id string, off int64, data []byte, opOf func(c, o string, off int64, data []byte) objstore.Op) error {
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
		ops = append(ops, opOf(v.coll, StripeName(s.stripe), s.off, data[s.pos:s.pos+s.length]))
	}
	if err := m.store.Commit(ctx, ops); err != nil {
		return fmt.Errorf("volume: write %q at %d (%d bytes): %w", id, off, len(data), err)
	}
	return nil
}

// Read reads length bytes at off. Unwritten ranges read as zeros. The buffer returned is new;
// ReadInto fills one the caller owns.
func (m *Manager) Read(ctx context.Context, id string, off, length int64) ([]byte, error) {
	return m.read(ctx, id, off, length, m.storeRead)
}

// ReadInto fills p with the volume's bytes at off, as Read returns them; [off, off+len(p)) must
// lie inside the volume. Each stripe's part is read straight into its slice of p, with no buffer
// of the Manager's or the store's in between when the store reads into buffers
// (objstore.IntoReader) and p is 4 KiB-aligned (a Go allocation of a multiple of 4 KiB is). On
// an error, p may hold part of the range, never data that failed the store's verification.
func (m *Manager) ReadInto(ctx context.Context, id string, off int64, p []byte) error {
	return m.readInto(ctx, id, off, p, m.storeRead)
}

// ReadNoCacheInto is ReadInto without the store's data cache, as ReadNoCache reads: a copy or a
// comparison reads into buffers it reuses.
func (m *Manager) ReadNoCacheInto(ctx context.Context, id string, off int64, p []byte) error {
	return m.readInto(ctx, id, off, p, m.storeReadNoCache)
}

// readInto fills p with [off, off+len(p)) of volume id through read, under the volume's gate.
func (m *Manager) readInto(ctx context.Context, id string, off int64, p []byte, read objstore.ReadIntoFunc) error {
	v, err := m.lookup(id)
	if err != nil {
		return err
	}
	v.gate.RLock()
	defer v.gate.RUnlock()
	if err := v.checkRange(off, int64(len(p))); err != nil {
		return err
	}
	return m.readStripes(ctx, v, off, p, read)
}

// ReadNoCache is Read for bulk reads that must not displace the data the volume's users read (a
// replica's copy and comparison, a scrub): the store reads it without its data cache when it can
// (objstore.NoCacheReader), verifying it as Read does; otherwise it is Read.
func (m *Manager) ReadNoCache(ctx context.Context, id string, off, length int64) ([]byte, error) {
	return m.read(ctx, id, off, length, m.storeReadNoCache)
}

// read reads length bytes at off of volume id through read into a new buffer, under the volume's
// gate.
func (m *Manager) read(ctx context.Context, id string, off, length int64, read objstore.ReadIntoFunc) ([]byte, error) {
	v, err := m.lookup(id)
	if err != nil {
		return nil, err
	}
	v.gate.RLock()
	defer v.gate.RUnlock()
	return m.readNew(ctx, v, off, length, read)
}

// readNew checks [off, off+length) against v and reads it with read into a new buffer, which a
// store that reads into buffers fills directly (one allocation, no copy, whatever the stripes).
// REQUIRES: v.gate held shared.
func (m *Manager) readNew(ctx context.Context, v *vol, off, length int64, read objstore.ReadIntoFunc) ([]byte, error) {
	if err := v.checkRange(off, length); err != nil {
		return nil, err
	}
	p := make([]byte, length) // 4 KiB-aligned when length is a multiple of 4 KiB (Go's size classes)
	if err := m.readStripes(ctx, v, off, p, read); err != nil {
		return nil, err
	}
	return p, nil
}

// readStripes fills p with [off, off+len(p)) of v's stripes, which checkRange accepted, reading
// each stripe's part with read straight into its slice of p; missing stripes and bytes past a
// stripe object's end read as zeros. REQUIRES: v.gate held shared.
func (m *Manager) readStripes(ctx context.Context, v *vol, off int64, p []byte, read objstore.ReadIntoFunc) error {
	var room [4]segment // a read spans few stripes: no allocation for its segments
	for _, s := range appendSegments(room[:0], off, int64(len(p)), v.stripeSize) {
		part := p[s.pos : s.pos+s.length]
		n, err := read(ctx, v.coll, StripeName(s.stripe), s.off, part)
		if errors.Is(err, objstore.ErrNotFound) {
			clear(part) // never written: zeros
			continue
		}
		if err != nil {
			return fmt.Errorf("volume: read %q at %d: %w", v.id, off+s.pos, err)
		}
		clear(part[n:]) // past the stripe object's end
	}
	return nil
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
