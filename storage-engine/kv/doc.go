// Package kv holds the metadata side of a Cobalt store: the key schema, the records stored under
// it, and opening the pebble database that holds them.
//
// Key schema (every key starts with a one-byte prefix; names never contain a NUL byte):
//
//	S                          superblock (format version, store UUID, geometry, next nid)
//	C <collection>             a collection
//	O <collection> 00 <object> an object's onode (without its extent map, which is in E shards);
//	                           one collection's objects are one range scan
//	E <nid:8 BE> <shard:8 BE>  one shard of the extent map of the object with that nid: its extents
//	                           in one fixed logical span, with their checksums (storage-engine/onode)
//	M <nid:8 BE> <key>         an omap entry of the object with that nid
//	D <seq:8 BE>               a deferred write of one checksum block, applied in place later
//	T                          store statistics (object count, logical bytes)
//	F ...                      reserved for a persisted freelist: today the allocator is rebuilt
//	                           from the onodes at mount, which cannot leak across a crash
//
// Prefixes sort C < D < E < F < M < O < S < T, and within O the collection name then a NUL precede the
// object name, so the keys of one collection are contiguous and ordered by object name.
//
// Every decoder in this package returns an error wrapping ErrCorrupt on malformed input and never
// panics.
//
// # Failures of pebble's background work
//
// An operation the caller runs (Get, Apply, Flush, ...) returns its error. pebble's background
// work does not: a failed flush or compaction, a corruption found while compacting, a disk
// operation that takes too long, a write stall. Open installs an event listener (events.go) that
// counts each of them in DB.Health, keeps the last error, logs them to Options.Logger and passes
// them to Options.Events; the disk is watched with pebble's disk-health wrapper
// (Options.DiskSlowThreshold). pebble's own log lines go to Options.Logger too; its Fatalf, called
// on a broken invariant, logs and panics, as pebble requires that it not return.
//
// # A failed device
//
// pebble does not survive some failed writes: closing its WAL at a rotation, queueing a WAL record
// after a failed WAL write, syncing its MANIFEST. It panics there (directly or through Fatalf),
// and the panic ends the process. With Options.DeviceFailed, the file system under pebble is
// fail-stop (failstop.go): a changing operation that fails because the device failed does not
// return, nor does any changing operation after it; the database is then stuck (DB.Stuck,
// DB.StuckErr, ErrStuck). It acknowledges nothing from then on, still serves reads that need no
// write, and is never closed: Close returns ErrStuck and the database's goroutines and memory stay
// until the process exits. Its files are as a crash at the failure would leave them.
package kv
