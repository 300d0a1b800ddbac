// Package bench runs the storage engine's standard workloads against a store and, for comparison,
// fio against the raw device, and reports IOPS, bandwidth and latency percentiles side by side.
//
// Workloads (every store write is durable when acknowledged: Commit returns after the device flush
// and the KV sync):
//   - randwrite-4k-qd1 / -qd16: 4 KiB overwrites at random 4 KiB-aligned offsets of preallocated
//     4 MiB objects, 1 or 16 requests in flight;
//   - seqwrite-1m: 1 MiB writes creating new objects (4 MiB each, written in order);
//   - randread-4k-qd16: 4 KiB reads at random offsets of the 4 MiB objects, after a remount so
//     no onode is cached (the device is O_DIRECT, so there is no page cache either);
//   - create-small: new objects of 4 KiB with 2 xattrs and 4 omap keys each.
//
// The fio jobs use the same block size, queue depth (libaio iodepth) and O_DIRECT, with no fsync:
// the raw device's ceiling. The go-dev column runs the same shapes through blockdev (pread/pwrite
// from QD goroutines, no flush), separating the cost of Go's I/O path from the store's own.
//
// Each store workload also reports the process's CPU time per operation (user+system, including
// the KV's and the deferred flusher's background work): on a small shared machine that, more than
// the device, bounds the store.
//
// Reproduce: make bench (root; a 4 GiB sparse file on a fresh loop device), or
// cobalt-bench -loop-size 4G -duration 10s -objects 64 -fio. cobalt-bench runs with
// GOMAXPROCS of at least blockdev.MinIOProcs, as the node daemon should; -workloads picks
// workloads by name prefix and -cpuprofile writes one CPU profile per workload.
package bench
