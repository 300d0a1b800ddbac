package cache

import "hash/maphash"

// ObjectKey names an object of the store: a collection and an object name within it.
type ObjectKey struct {
	Collection string
	Object     string
}

// objectKeyHasher hashes ObjectKeys with a per-cache seed. Both fields are hashed so that the
// objects of one collection spread over all shards.
type objectKeyHasher struct {
	seed maphash.Seed
}

func newObjectKeyHasher() objectKeyHasher {
	return objectKeyHasher{seed: maphash.MakeSeed()}
}

func (h objectKeyHasher) hash(k ObjectKey) uint64 {
	c := maphash.String(h.seed, k.Collection)
	o := maphash.String(h.seed, k.Object)
	// Mix so that (a, b) and (b, a) differ.
	return (c*0x9e3779b97f4a7c15 + 0x632be59bd9b4e019) ^ o
}

// comparableHasher hashes any comparable key with a per-cache seed.
func comparableHasher[K comparable]() func(K) uint64 {
	seed := maphash.MakeSeed()
	return func(k K) uint64 { return maphash.Comparable(seed, k) }
}
