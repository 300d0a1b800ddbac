package engine

import (
	"errors"
	"fmt"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
	"github.com/cobaltstore/cobalt/storage-engine/store"
)

// sentinels pairs the engine's errors with the daemon's.
var sentinels = []struct{ engine, daemon error }{
	{store.ErrNotFound, objstore.ErrNotFound},
	{store.ErrExists, objstore.ErrExists},
	{store.ErrNotEmpty, objstore.ErrNotEmpty},
	{store.ErrNoSpace, objstore.ErrNoSpace},
	{store.ErrInvalid, objstore.ErrInvalid},
	{store.ErrClosed, objstore.ErrClosed},
}

// wrap returns err so that errors.Is also matches the daemon's sentinel for it.
func wrap(err error) error {
	if err == nil {
		return nil
	}
	if store.IsCorruption(err) {
		return fmt.Errorf("%w: %w", objstore.ErrCorrupt, err)
	}
	for _, s := range sentinels {
		if errors.Is(err, s.engine) {
			return fmt.Errorf("%w: %w", s.daemon, err)
		}
	}
	return err
}
