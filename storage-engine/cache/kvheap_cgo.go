//go:build cgo

package cache

// kvCacheOnGoHeap: with cgo, pebble allocates its block cache with C malloc, off the Go heap.
const kvCacheOnGoHeap = false
