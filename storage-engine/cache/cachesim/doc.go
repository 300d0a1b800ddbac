// Package cachesim generates the access patterns used to compare cache policies (a hot set
// interleaved with long sequential scans, and Zipf) and replays them through a cache to measure
// its hit ratio. It is shared by the cache package's benchmarks and the cache-bench command.
package cachesim
