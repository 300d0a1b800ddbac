// Package volbench runs Cobalt's standard volume workloads (4 KiB random writes and reads at a
// queue depth, 1 MiB sequential writes) against anything that reads and writes at byte offsets,
// normally a volume through the node daemon's gRPC API, and reports IOPS, bandwidth and latency
// percentiles.
//
// A workload runs QueueDepth workers for a fixed duration (or a fixed number of ops); each worker
// issues one request at a time, so QueueDepth is the number of requests in flight. Offsets of
// random workloads are aligned to the block size and spread uniformly over the region; sequential
// workloads split the region into QueueDepth contiguous lanes. Latency is measured per request.
package volbench
