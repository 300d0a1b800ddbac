package objstore

import "context"

// NoCacheReader is a Store that can read without going through its data cache, for bulk reads
// that must not displace the data a volume's users read (a replica's copy and comparison, a
// scrub). It is optional: a Store without it (memstore, which caches nothing, or a wrapper that
// embeds a Store) is read with Read.
type NoCacheReader interface {
	// ReadNoCache is Read that neither looks in, fills nor evicts from the store's data cache; it
	// returns the same content as Read and verifies it as Read does.
	ReadNoCache(ctx context.Context, c, o string, off, length int64) ([]byte, error)
}
