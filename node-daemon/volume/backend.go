package volume

import (
	"context"
	"fmt"
)

// Backend serves one volume of a Manager to a block-device frontend (it implements
// node-daemon/frontend.Backend). Writes are durable when they return, so Flush is only the
// Manager's barrier.
type Backend struct {
	Manager *Manager
	ID      string
}

// ReadAt fills p with the volume's bytes at off.
func (b Backend) ReadAt(ctx context.Context, p []byte, off int64) error {
	data, err := b.Manager.Read(ctx, b.ID, off, int64(len(p)))
	if err != nil {
		return err
	}
	if len(data) != len(p) {
		return fmt.Errorf("volume: read %q: %d bytes at %d, got %d", b.ID, len(p), off, len(data))
	}
	copy(p, data)
	return nil
}

// WriteAt writes p at off as one durable transaction.
func (b Backend) WriteAt(ctx context.Context, p []byte, off int64) error {
	return b.Manager.Write(ctx, b.ID, off, p)
}

// Flush returns once every I/O that started before it finished.
func (b Backend) Flush(ctx context.Context) error { return b.Manager.Flush(ctx, b.ID) }

// Trim discards [off, off+length) and frees its space.
func (b Backend) Trim(ctx context.Context, off, length int64) error {
	return b.Manager.Trim(ctx, b.ID, off, length)
}
