package volume

import "errors"

// Errors of the volume layer. Store errors (objstore.ErrNotFound, ErrNoSpace, ...) pass through
// wrapped; a missing volume wraps objstore.ErrNotFound and a bad range objstore.ErrInvalid.
var (
	// ErrShrink: a resize asked for a smaller size.
	ErrShrink = errors.New("volume: shrinking is not supported")
	// ErrConflict: a create named an existing volume with another size or stripe size.
	ErrConflict = errors.New("volume: exists with different parameters")
)
