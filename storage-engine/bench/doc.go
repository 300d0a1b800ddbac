// Package bench runs the storage engine's standard workloads against a store and, for comparison,
// fio against the raw device, and reports IOPS, bandwidth and latency percentiles side by side.
//
// Workloads (every store write is durable when acknowledged: Commit returns after the device flush
// and the KV sync):
//   - randwrite-4k-qd1 / -qd16 / -qd128: 4 KiB overwrites at random 4 KiB-aligned offsets of
//     preallocated 4 MiB objects, 1, 16 or 128 requests in flight (128: the deep queue BlueStore's
//     own benchmark runs at);
//   - seqwrite-1m: 1 MiB writes creating new objects (4 MiB each, written in order);
//   - randread-4k-qd16: 4 KiB reads at random offsets of the 4 MiB objects, after a remount so
//     no onode is cached (the device is O_DIRECT, so there is no page cache either), each reader
//     reading into its own aligned buffer (Store.ReadInto), as fio's jobs and the node daemon's
//     block frontend do;
//   - create-small: new objects of 4 KiB with 2 xattrs and 4 omap keys each.
//
// The fio jobs use the same block size, queue depth (libaio iodepth) and O_DIRECT, with no fsync:
// the raw device's ceiling. The go-dev column runs the same shapes through blockdev (pread/pwrite
// from QD goroutines, no flush), separating the cost of Go's I/O path from the store's own.
// The random reads of the baselines read written blocks, as the store's do: when no selected job
// writes their region first (-workloads randread), the suite preconditions it (Precondition, the
// bytes the store's objects are prefilled with). A never-written region of a sparse loop file
// (or an unmapped range of a thin or flash device) reads without reaching the disk: fio read such
// holes about twice as fast as written blocks on the development machine (about 100k against
// 45-65k 4 KiB reads per second at QD16), which made the store look two to four times slower than
// the device.
//
// The 4 KiB random overwrites are also compared with the durable floor (fio.DurableFloor): fio
// with min(QD, 16) processes of psync, each direct 4 KiB write followed by an fdatasync, on the
// same device and region: what a writer pays when every write is durable on acknowledgement, as the
// store's are. The 1 MiB sequential writes have theirs too (fio.SeqDurableFloor: min(QD, 16)
// processes, each writing its own slice of the region in order, every 1 MiB write followed by an
// fdatasync). A second table prints them beside the floor (the store/floor ratio, the floor's
// write and fdatasync latencies) and, for the 4 KiB rows, beside raw fio at QD16 and QD128.
//
// Where a cold 4 KiB read's time goes (issue 12, measured on the 2-CPU development machine under
// a load of 8-16 from other work, one process alternating 1.5 s slices of each mode five times,
// 16 goroutines, the store's own blocks): the store's readers spend about 88% of their time inside
// pread (go tool trace: -trace), 7% waiting for a P, 3% on mutexes (the cache shards) and 2%
// running. Raw preads of the same blocks reached about 52k reads/s at 12 µs of process CPU per
// read; adding the crc32c that every read verifies, 48k at 13 µs; a fresh 4 KiB result buffer per
// read as well (what Read returns), 37k at 22 µs (allocation, GC cycles every few MB of a small heap,
// page faults); the store's Read, 36-37k at 24 µs. Reading into a caller's buffer through the
// store's path reached 41k at 16 µs. So the store itself adds little beyond the checksum and the
// result buffer, and on a machine whose CPUs are oversubscribed every µs of CPU per read costs
// IOPS: the reads wait in pread for the loop device's kernel work and for a CPU to return on.
// Since then the store's readers read into their own buffers (Store.ReadInto, which allocates
// nothing per read). Four alternating before/after runs of -rounds 5 (load 10 to 25; fio's
// medians moved from 43k to 108k between them): the store's medians went from 29k, 40k, 40k and
// 62k to 50k, 47k, 46k and 73k reads/s, its CPU per read from 23, 19, 19 and 15 µs to 12, 14, 15
// and 12 µs, and store/fio from 67%, 77%, 74% and 68% to 102%, 97%, 74% and 67%: the CPU per read
// is what reliably fell; the ratio to fio still moves with the load.
//
// Each store workload also reports the process's CPU time per operation (user+system, including
// the KV's and the deferred flusher's background work, the CPU/op column): on a small shared
// machine that, more than the device, bounds the store. Each write workload logs its commit groups
// (GroupPhases: transactions per group, mean time per group in staging, data writes plus the
// device flush, publication and the wait for the KV's WAL sync), which says where its time goes;
// with the metadata in a metafs file system, it adds that file system's syncs with their mean
// time writing and flushing the device (metafs.SyncStats), the part of the WAL sync wait that is
// the device's and not pebble's or the scheduler's.
// The store keeps its metadata on the benchmarked device (MetadataOnDevice, as the node daemon
// makes stores), in a host directory (MetadataInDir, as stores made before label version 2) or on
// a separate metadata device (MetadataOnSeparateDevice, SuiteOptions.MetaDevicePath);
// SuiteOptions.Layouts runs any of them after one run of the baselines, one report each. Each
// table's first line is where the metadata was: the device region, the metadata device's, or the
// directory with its file system's type (MetadataLocation), so the layouts can be compared table
// to table.
//
// Reproduce: make bench (root; a 4 GiB sparse file on a fresh loop device and a 1 GiB one for the
// metadata device, three layouts), or cobalt-bench -loop-size 4G -meta-loop-size 1G -duration 10s
// -objects 64 -fio -metadata device,dir,metadev. cobalt-bench
// runs with GOMAXPROCS of at least blockdev.MinIOProcs, as the node daemon should; -workloads
// picks workloads by name prefix and -cpuprofile writes one CPU profile per workload (and layout).
// On a shared machine compare the random reads with -rounds N: fio, go-dev and the store's reads
// alternate N times and the table shows the medians (SuiteOptions.Rounds).
package bench
