package csinode

import (
	"context"
	"fmt"

	"github.com/cobaltstore/cobalt/node-daemon/volume"
)

// volumeBackend serves one volume of a volume.Manager as a frontend.Backend.
type volumeBackend struct {
	vols *volume.Manager
	id   string
}

// ReadAt implements frontend.Backend.
func (b volumeBackend) ReadAt(ctx context.Context, p []byte, off int64) error {
	data, err := b.vols.Read(ctx, b.id, off, int64(len(p)))
	if err != nil {
		return err
	}
	if len(data) != len(p) {
		return fmt.Errorf("volume %s: read %d bytes at %d, got %d", b.id, len(p), off, len(data))
	}
	copy(p, data)
	return nil
}

// WriteAt implements frontend.Backend; volume writes are durable when they return.
func (b volumeBackend) WriteAt(ctx context.Context, p []byte, off int64) error {
	return b.vols.Write(ctx, b.id, off, p)
}

// Flush implements frontend.Backend: writes are durable when acknowledged, so a barrier suffices.
func (b volumeBackend) Flush(ctx context.Context) error { return b.vols.Flush(ctx, b.id) }

// Trim implements frontend.Backend.
func (b volumeBackend) Trim(ctx context.Context, off, length int64) error {
	return b.vols.Trim(ctx, b.id, off, length)
}
