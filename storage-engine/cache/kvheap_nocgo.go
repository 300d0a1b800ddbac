//go:build !cgo

package cache

// kvCacheOnGoHeap: without cgo, pebble allocates its block cache on the Go heap.
const kvCacheOnGoHeap = true
