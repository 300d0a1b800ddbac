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
package volume
