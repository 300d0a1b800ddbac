// Package metafs is a small file system for the store's metadata database, kept in a region of
// the store's own block device (or of a faster device), in the manner of Ceph's BlueFS: pebble
// runs on it through its vfs.FS interface, so a store needs nothing outside its devices to mount,
// and a metadata sync costs a device flush instead of a host file system's journal commit.
//
// # Layout
//
// The region starts with two superblock slots (superblock.go); the one of the higher valid
// generation names the journal (one extent, in the region or in added space) and its epoch. A
// slot whose superblock has a newer version than this build reads refuses the mount (ErrVersion)
// even when the other slot is valid: that one is older, and its journal may be gone. (Builds
// before that check skipped such a slot; a build older than the record kinds opAddSpace and
// opTrim refuses a journal holding them as corrupt, so downgrading past them fails loudly.)
// Everything else in the region is allocated in units (64 KiB by default) to files and to the
// journal by an extent allocator (storage-engine/alloc), rebuilt at mount from the extents the
// state references: free space is never persisted, so a crash cannot leak it.
//
// The space is growable: AddSpace gives the file system further device extents after the
// region (its owner takes them from its own allocator, as BlueFS takes extents from BlueStore).
// An added extent is a journal record (opAddSpace) in the state like any other change; every
// snapshot writes the added extents first, and Space lists them, so the owner can mark them
// used at its mount. The allocator manages the device from the region's start to its end
// (region-relative offsets) with everything outside the region and the added extents used, so
// files and the journal get space in the region or in added extents alike (an allocation may
// run across the region's end into an added extent that touches it). The superblocks stay at
// the region's start.
//
// # The journal
//
// The state (directories, names, inodes with their extent lists and sizes) lives in memory. Each
// change is a record (records.go) applied to the state and queued; a journal flush appends the
// queued records as one checksummed entry carrying the epoch and the next sequence number, and
// flushes the device. Mount replays entries from the journal's start until the first position
// without a valid entry of the right epoch and sequence number: a torn or unwritten entry is the
// end. When the journal fills up, and at every mount, compaction writes the whole state as the
// first entry of a new journal (epoch+1) in free space, flushes, then writes the superblock of
// the next generation into the other slot and flushes; only then is the old journal's space
// freed. So a crash mounts either the old journal or the new one, never a mix.
//
// # Invariants
//
//   - A growing file is given space ahead of its size (up to twice what it holds, in steps of at
//     most 16 MiB), so appends take few, long extents. Closing a file it wrote gives back what lies
//     past its size rounded up to the unit (a trim record, never below the recorded size); the
//     space is allocatable once the record is durable. WAL files keep their space (it is their
//     recorded size; pebble deletes them whole).
//   - A file's recorded size covers only data that was flushed before the record: Sync writes
//     the file's data and flushes the device before it queues the size record and flushes the
//     journal. A file rewritten inside its recorded size (pebble's recycled WAL files) syncs with
//     one flush and no record.
//   - Space freed by a record (unlink, rename over a file, a closed unlinked file, an old journal)
//     is allocatable only once that record is durable, so data of a file that still exists after
//     a crash is never overwritten by another.
//   - Names and directories change in memory at once and become durable with the next journal
//     flush (any file's Sync that records something, a directory's Sync, Close); the journal is
//     ordered, so after a crash the state is the one after some prefix of the changes.
//   - A journal write, file data write or flush that fails leaves the device possibly behind
//     memory: the file system then refuses every change and every data write (ErrFailed) until
//     it is mounted again, which recovers the last durable state. So data a Sync failed to make
//     durable is never written out later (a WAL record written late would revive a failed
//     commit).
//   - Space added with AddSpace is allocatable only once its record is durable: a crash before
//     the record is durable leaves the extent not part of the file system, and no durable state
//     names a file or journal extent outside the region and the added space. Added extents are
//     whole units from the region's start, after the region, inside the device and disjoint;
//     replay refuses a record that is not (ErrCorrupt).
//   - A compaction always finds room: file allocations and new names are refused with ENOSPC
//     when the free space would drop below what a compaction of the state needs. A region that
//     has no such room at mount anyway keeps its journal and has it erased past its valid end.
//   - Decoding never panics on bad bytes: a superblock or entry that fails its checksum is not
//     used; a checksummed entry whose records make no sense is ErrCorrupt.
//
// # Caveats
//
// Writes past the end of a file leave a gap whose content is whatever the space held. There are
// no permissions, times are not persisted, directories cannot be renamed, and Lock only excludes
// other users of the same mounted FS (the device is opened by one process).
package metafs
