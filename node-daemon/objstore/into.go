package objstore

import (
	"context"
	"fmt"
)

// IntoReader is a Store that reads into the caller's buffer, so that a volume's hot read path (a
// block device's read, a read spanning stripes) allocates no result buffer per read. It is
// optional, as NoCacheReader is: the engine adapter and memstore have it, and ReaderInto adapts a
// Store without it. A wrapper that embeds the Store interface does not have it (the interface's
// method set has no ReadInto), so its own Read is what ReaderInto calls; a wrapper that embeds an
// implementation and changes Read must change ReadInto too.
type IntoReader interface {
	// ReadInto fills p with object o's bytes at off and returns how many it filled: len(p), or
	// fewer when the range crosses the object's end (0 at or past it); p past that is left as it
	// was. Holes read as zeros, and the content and verification are Read's. On an error it
	// returns 0 and p holds no data of the object that the call put there. The store keeps no
	// reference to p. The engine reads whole 4 KiB blocks from the device straight into a p whose
	// address is 4 KiB-aligned (in practice any Go allocation of a multiple of 4 KiB), and through
	// a pooled buffer and a copy into any other.
	ReadInto(ctx context.Context, c, o string, off int64, p []byte) (int, error)
}

// NoCacheIntoReader is a Store that reads into the caller's buffer without going through its data
// cache (ReadNoCache's purpose, ReadInto's contract). Optional; NoCacheReaderInto adapts any Store.
type NoCacheIntoReader interface {
	// ReadNoCacheInto is ReadInto that neither looks in, fills nor evicts from the data cache.
	ReadNoCacheInto(ctx context.Context, c, o string, off int64, p []byte) (int, error)
}

// ReadIntoFunc reads into a caller's buffer with IntoReader.ReadInto's contract.
type ReadIntoFunc func(ctx context.Context, c, o string, off int64, p []byte) (int, error)

// ReaderInto returns s's ReadInto, or for a Store without one a ReadIntoFunc that reads with Read
// and copies.
func ReaderInto(s Store) ReadIntoFunc {
	if r, ok := s.(IntoReader); ok {
		return r.ReadInto
	}
	return copyingReader(s.Read)
}

// NoCacheReaderInto returns the ReadIntoFunc for bulk reads that must not displace the data cache:
// s's ReadNoCacheInto, else its ReadNoCache with a copy (NoCacheReader), else ReaderInto(s) (a
// Store without a no-cache read is read as usual).
func NoCacheReaderInto(s Store) ReadIntoFunc {
	if r, ok := s.(NoCacheIntoReader); ok {
		return r.ReadNoCacheInto
	}
	if r, ok := s.(NoCacheReader); ok {
		return copyingReader(r.ReadNoCache)
	}
	return ReaderInto(s)
}

// copyingReader adapts a Read to a ReadIntoFunc: it reads len(p) bytes and copies them into p.
func copyingReader(read func(ctx context.Context, c, o string, off, length int64) ([]byte, error)) ReadIntoFunc {
	return func(ctx context.Context, c, o string, off int64, p []byte) (int, error) {
		data, err := read(ctx, c, o, off, int64(len(p)))
		if err != nil {
			return 0, err
		}
		if len(data) > len(p) {
			return 0, fmt.Errorf("read %s/%s at %d: the store returned %d bytes for %d", c, o, off, len(data), len(p))
		}
		return copy(p, data), nil
	}
}
