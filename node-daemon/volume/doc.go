// Package volume implements Cobalt's thin-provisioned block volumes on top of one store.
//
// Layout on the store: volume ID lives in collection "vol.<ID>". Object "meta" holds the volume's
// attributes (format version, size, stripe size) and, under the prefix "user.", the attributes
// other layers keep on the volume (SetUserAttr; the replica layer's fencing generation). The
// volume's bytes are cut into stripes of StripeSize bytes; stripe i is object
// "s.<i as 16 hex digits>" and holds bytes [i*StripeSize, (i+1)*StripeSize) of the volume. A
// stripe object exists only once something was written to it, and only up to the highest byte
// written (thin provisioning): missing stripes and bytes past a stripe object's size read as
// zeros.
//
// Snapshots and clones: snapshot ID lives in collection "snap.<ID>" (its own namespace of IDs):
// a clone of every object of the source volume, meta included, with attributes "snapshot_of"
// naming the source and "created" (when it was taken, Unix nanoseconds). The store's clone shares data by reference count (objstore.CloneTo), so a
// snapshot copies no data and costs metadata proportional to the allocation units the volume has
// written, never to its size; the volume's next write to a shared unit copies it. A volume made
// from a snapshot (CreateFromSnapshot) or from another volume (CloneVolume) is an ordinary volume
// whose stripes are clones, with a fresh meta object and attribute "origin".
//
// Invariants:
//   - Every I/O lies inside [0, Size); a write is one store transaction, so a write that spans
//     stripes is atomic and durable when Write returns.
//   - Size only grows (Resize refuses to shrink with ErrShrink): data is never dropped by a resize.
//   - Trim frees whole stripes by removing their objects and zeroes partial ranges; a trimmed range
//     reads as zeros.
//   - Delete makes the volume invisible at once, waits for in-flight I/O, then removes stripes in
//     batches and the meta object and collection last, so a Delete interrupted by a crash leaves a
//     volume that a repeated Delete finishes.
//   - Flush is a barrier: it returns once every I/O that started before it has finished.
//   - A snapshot is crash-consistent: it is one store transaction (create the collection, clone
//     every object), committed while the volume's I/O gate is held exclusively, so it holds every
//     write acknowledged before Snapshot was called, none that started after it returned, and each
//     write in between entirely or not at all. A crash leaves it whole or absent. The volume's
//     I/O waits only while that transaction is listed and committed.
//   - Snapshots are read-only: the package has no call that writes one. ReadSnapshot reads it.
//   - A restore or clone is one transaction too, and is never smaller than its source (ErrShrink);
//     the part past the source's size reads as zeros.
//   - DeleteSnapshot first marks the snapshot as being deleted, then removes it like Delete; a
//     marked snapshot is never read, and Open finishes its deletion. It frees only the space the
//     snapshot alone references (SnapshotInfo.Exclusive).
//   - Deleting a volume that has snapshots or clones is allowed: they share its data by reference
//     count, so the data stays until the last of them is deleted; a snapshot's Source may name a
//     volume that no longer exists.
package volume
