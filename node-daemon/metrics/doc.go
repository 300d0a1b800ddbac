// Package metrics exports the node daemon's Prometheus metrics: a collector that reads each
// mounted store's engine metrics when scraped (ops, bytes, latency summaries, commit grouping,
// deferred-write queue, allocator usage and fragmentation, cache hits and misses per shard, device
// errors, the metadata database's background errors, slow-disk reports and write stalls, and the
// engine's health state), a collector over the replicated volumes this node coordinates (copies in
// sync or catching up, replica lag in dirty bytes, bytes rebuilt, resynced and compared, the
// attachment generation), and gRPC interceptors that record a latency histogram per method and status code.
//
// Invariants: the collector holds no state of its own: every scrape reads fresh snapshots, so a
// store that was unmounted disappears from the next scrape; metric names are prefixed "cobalt_"
// and carry the store UUID as the "store" label (replica metrics: the Store's name, with the
// Volume and node).
package metrics
