// Package store is Cobalt's object store: objects, grouped in collections, stored directly on a raw
// block device in the manner of Ceph BlueStore, with their metadata in pebble.
//
// # Basics
//
// Mkfs formats a device (refusing one that carries another signature unless forced) and creates the
// metadata database; Open mounts it; Close unmounts cleanly. Changes are made by building a
// Transaction (create/remove collection, touch, write, zero, truncate, remove, setattr/rmattr, omap
// set/rmkeys/clear/setheader, clone within a collection or into another one (CloneTo), rename)
// and passing it to Commit, which applies it atomically
// and returns once it is durable. Reads (Read, Stat, GetAttr(s), Omap*, ListObjects,
// ListCollections) see every transaction whose Commit has returned. ReadInto fills a buffer the
// caller owns instead of returning a new one: a hot read path that reuses its buffers then
// allocates nothing per read (a buffer aligned to blockdev.Alignment receives the device's blocks
// directly; any other goes through pooled aligned buffers, bounce.go).
//
// # Layout
//
// The device starts with a label (storage-engine/blockdev) in a reserved area. A store made without a
// metadata directory (the default of the node daemon) then has its metadata region: the metadata
// database lives there in a storage-engine/metafs file system (the way BlueStore keeps RocksDB in
// BlueFS), sized by MkfsOptions.MetadataSize (a sixteenth of the device by default), and the label
// (version 2) names it, so the device alone mounts the store (metadata.go). A store made with a
// metadata directory keeps its database in that host directory instead (label version 1, every
// store made before version 2); it mounts from that directory as before. The rest is data space
// managed by an allocator in units of min_alloc_size. Each object's onode
// (storage-engine/onode) maps unit-aligned logical ranges to device extents and holds one crc32c per
// checksum block; the extent map is stored in fixed-span shards under their own keys, so a commit
// rewrites only the shards it changed (a 4 KiB overwrite of a 4 MiB object writes one shard of
// about a hundred bytes, not the object's 1024 checksums). The KV schema is described in
// storage-engine/kv; the superblock names the metadata format (format.go), which Open checks.
// The allocator's state is not persisted: mount rebuilds it from the onodes, so a crash can never
// leak space.
//
// # Write path and crash consistency
//
// New data is written copy-on-write to freshly allocated space, the device is flushed, and only
// then the metadata batch is committed with a sync: the batch is the commit point. The whole
// allocation units of large writes are written by the committing caller before the transaction
// joins the queue (prepare.go), so many callers write in parallel while a group commits. Small overwrites
// of unshared allocated space are instead logged in the batch (deferred writes) and applied in place
// later; mount replays any left. Clones share extents; units referenced more than once carry a
// reference count, and a shared unit is never overwritten in place. A clone copies no data, also
// across collections (CloneTo, which snapshots are made of): its cost is the source's extent map
// and one reference per allocation unit it maps. CollectionUsage reports the space a collection
// references and the part only it references (what removing it would free), as of the state
// when it starts: it scans a snapshot of the KV without holding back commits, and each group
// published meanwhile records, for the scans in progress, the reference counts it changes.
//
// # Concurrency
//
// Commits are queued and applied in submission order by one committer that groups them: a group
// shares one device flush. The committer applies the group's batch to pebble without waiting for
// its WAL sync, publishes the group's state under an exclusive gate that readers hold shared (so a
// reader never sees space being reused), and moves on to the next group (while two groups wait
// for their sync, the next one gathers what queues meanwhile, and a small one waits until no
// group waits for its sync and the committers it acknowledged have queued again, so that it does
// not pay a sync for a few transactions); a syncer then waits for
// the WAL sync (pebble syncs consecutive groups' batches together), makes the space the group
// freed allocatable again, and acknowledges its transactions. Freed space is reused only once the
// group that freed it is durable, and deferred writes are applied in place only once durable.
//
// # Files
//
// store.go (Open, mount, Close), mkfs.go, metadata.go (where the metadata database lives), format.go, options.go, errors.go, txn.go (Transaction),
// commit.go (group commit), stage.go (staging a group, publication), write.go (write, zero, truncate),
// prepare.go (prepared writes), deferred.go (deferred writes, flusher, replay), refs.go (shared
// extent reference counts), usage.go (CollectionUsage), scan.go, read.go (reads; ReadNoCache bypasses the buffer cache; ReadInto fills the caller's buffer), bounce.go (the
// pooled aligned buffers of reads that cannot land in the caller's memory), statfs.go, metrics.go, fsck.go (Fsck,
// Repair), onode_cache.go (the OnodeCache interface), caches.go (storage-engine/cache wiring),
// bufwrites.go (buffered writes: written data cached as writing at publication, clean once
// durable), health.go (Health: OK, Degraded or Failed, from a failed commit and from what the
// metadata database's event listener saw, see storage-engine/kv), metadata.go (where the metadata
// database lives), metaspace.go (the metadata region's reserve), stuck.go (a failed metadata
// device stops the store, not the process).
//
// # Caveats
//
// A failed metadata commit (the KV's sync failed) leaves the in-memory state uncertain: the store
// then refuses writes with ErrFailed until it is reopened, and Health reports it Failed. When the
// device under the metadata (a region of the store's device, or the metadata device) fails a
// write, the metadata database stops instead of ending the process (stuck.go, kv's fail-stop):
// commits in flight and after return ErrFailed at once, their outcome unknown as after a power cut,
// and Close abandons the store (its goroutines and memory stay until the process exits) so the
// other stores of the process keep working. Failures of
// pebble's background work (flushes, compactions, a slow disk) are not returned by any call: they
// make Health Degraded for HealthWindow and reach Options.Logger and Options.KVEvents. Reads are not snapshot-isolated across
// calls, and a read may observe a transaction whose Commit has not returned yet (it is applied
// and waiting for its sync); a crash may lose such a transaction, never one whose Commit
// returned. Verification failures are CorruptionErrors (IsCorruption); a read never returns data that
// failed its checksum. With the metadata on the device, Commit refuses transactions with ErrNoSpace
// (wrapping syscall.ENOSPC) while the metadata region's free space is below a reserve of about three
// memtables, since pebble stalls for good when it cannot flush; removals keep working down to one
// memtable. A single transaction whose metadata outgrows the reserve can still fill the region.
// Obsolete WAL files are deleted, not kept for reuse (pebble's WAL recycling kept three of a
// memtable each, which on a 64 MiB region pushed sustained overwrites below the reserve):
// deferred writes log their data in the WAL, so the region must hold the live WALs (1.1 memtables
// each, up to three when flushes fall behind) besides the reserve and the tables.
package store
