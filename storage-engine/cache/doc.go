// Package cache holds the storage engine's in-memory caches: a sharded cache for Onodes, a
// BufferCache of data buffers (a BufferSpace per object), a memory pool that accounts bytes per
// category, and an autotuner that splits a memory target between those caches and pebble's block
// cache.
//
// # Replacement policy
//
// The default policy is 2Q, from T. Johnson and D. Shasha, "2Q: A Low Overhead High Performance
// Buffer Management Replacement Algorithm", VLDB 1994. A shard keeps three lists:
//
//   - A1in: a FIFO of entries seen once. A hit in A1in does not move the entry (the paper treats
//     it as a correlated reference).
//   - A1out: a FIFO of ghost keys (no values) evicted from A1in. Inserting a key that is still in
//     A1out is a "ghost hit": the entry goes straight to Am.
//   - Am: an LRU of entries seen again after leaving A1in.
//
// When the shard is over capacity, the victim is the tail of A1in while A1in holds more than
// kin × capacity, else the tail of Am. A1out holds at most kout × capacity of ghost charge.
// kin and kout default to 0.5. A plain LRU policy sits behind the same internal interface and is
// chosen with Options.Policy ("2q" or "lru").
//
// Sizes are "charges": a cache counts either entries (the Onode cache: one per entry) or bytes
// (the buffer cache). Separately, every entry carries a memory estimate in bytes that is added to
// a Mempool category, so that memory is accounted in bytes whatever the cache's unit. Ghosts
// hold no value and are not accounted; there are at most kout × capacity of them.
//
// # Memory target and autotuning
//
// A Mempool counts bytes per category (Onodes, buffers, the KV block cache, other) with atomic
// counters. The memory target defaults to 80% of the cgroup memory limit (DefaultMemoryTarget).
// Rebalance, a pure function, splits the target minus other memory among the Onode cache, the
// buffer cache and pebble's block cache: by ratios at first, then one step per round toward the
// cache with the highest marginal gain (ghost hits per byte of ghost window; misses per byte for
// caches without ghosts). The Tuner runs it periodically (Start) and applies the budgets with
// SetBudget, which trims a cache that is over. PebbleBlockCache sizes pebble's cache through a
// reservation, as pebble's cache cannot be resized. GCSettingsFor (gc.go) gives the Go collector
// of a process the sum of its stores' memory targets as its memory limit, and lets the heap grow
// into it between cycles; main packages and the node daemon's engine apply it, never a library.
//
// # Sharding and concurrency
//
// A cache has N shards (8 on non-rotational devices, 5 on rotational ones, or Options.Shards).
// An entry's shard is chosen by a seeded hash of its key; for ObjectKey the hash covers both the
// collection and the object name, so one collection spreads over every shard. Each shard has its
// own mutex; no lock is shared between shards on the hot path. The Mempool counters are atomics.
// In the code, a `mu` struct holds exactly the fields its mutex guards, and methods whose name
// ends in Locked require that lock.
//
// # Invariants
//
//   - A pinned entry (pin count > 0) or a dirty entry is never evicted; it stays on its list and
//     eviction skips it. A cache may therefore exceed its capacity while too much is pinned.
//   - A shard's resident charge equals the sum of its entries' charges, and equals the sum of the
//     charges of its resident lists (A1in + Am, or the LRU list).
//   - The bytes a cache adds to its Mempool category equal the sum of its shards' bytes.
//   - In a BufferSpace, buffers never overlap; a buffer in state writing is not on any list, so
//     it cannot be evicted until FinishWrite turns it clean (or drops it under a no-cache hint).
//   - Buffer data is never modified in place once cached: overwrites replace or split buffers.
//
// Check (on Cache and BufferCache) verifies these invariants; tests call it after each workload.
package cache
