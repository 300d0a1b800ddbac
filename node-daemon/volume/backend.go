package volume

import (
	"context"
)

// Backend serves one volume of a Manager to a block-device frontend (it implements
// node-daemon/frontend.Backend). Writes are durable when they return, so Flush is only the
// Manager's barrier.
type Backend struct {
	Manager *Manager
	ID      string
}

// ReadAt fills p with the volume's bytes at off, reading straight into p (Manager.ReadInto).
func (b Backend) ReadAt(ctx context.Context, p []byte, off int64) error {
	return b.Manager.ReadInto(ctx, b.ID, off, p)
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
