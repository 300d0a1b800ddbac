// Package store is Cobalt's object store: objects, grouped in collections, stored directly on a raw
// block device in the manner of Ceph BlueStore, with their metadata in pebble.
//
// # Basics
//
// Mkfs formats a device (refusing one that carries another signature unless forced) and creates the
// metadata database; Open mounts it; Close unmounts cleanly. Changes are made by building a
// Transaction (create/remove collection, touch, write, zero, truncate, remove, setattr/rmattr, omap
// set/rmkeys/clear/setheader, clone, rename) and passing it to Commit, which applies it atomically
// and returns once it is durable. Reads (Read, Stat, GetAttr(s), Omap*, ListObjects,
// ListCollections) see every transaction whose Commit has returned.
//
// # Layout
//
// The device starts with a label (storage-engine/blockdev) in a reserved area; the rest is data
// space managed by an allocator in units of min_alloc_size. Each object's onode
// (storage-engine/onode) maps unit-aligned logical ranges to device extents and holds one crc32c per
// checksum block; the KV schema is described in storage-engine/kv. The allocator's state is not
// persisted: mount rebuilds it from the onodes, so a crash can never leak space.
//
// # Write path and crash consistency
//
// New data is written copy-on-write to freshly allocated space, the device is flushed, and only
// then the metadata batch is committed with a sync: the batch is the commit point. Small overwrites
// of unshared allocated space are instead logged in the batch (deferred writes) and applied in place
// later; mount replays any left. Clones share extents; units referenced more than once carry a
// reference count, and a shared unit is never overwritten in place.
//
// # Concurrency
//
// Commits are queued and applied in submission order by one committer that groups them: a group
// shares one device flush and one KV sync. Readers run concurrently with each other and with the
// committer; the committer publishes a group's new state and releases freed space under an exclusive
// gate that readers hold shared, so a reader never sees reallocated space.
//
// # Caveats
//
// A failed metadata commit (the KV's sync failed) leaves the in-memory state uncertain: the store
// then refuses writes with ErrFailed until it is reopened. Reads are not snapshot-isolated across
// calls. Verification failures are CorruptionErrors (IsCorruption); a read never returns data that
// failed its checksum.
package store
