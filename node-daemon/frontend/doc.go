// Package frontend turns a Cobalt volume into a Linux block device on this node, so that a Pod's
// I/O reaches the local engine with no network hop. The CSI node plugin (node-daemon/csinode)
// consumes the Frontend interface; fuseloop is the implementation for kernels with FUSE and loop
// devices (a ublk frontend is the fast path on kernels that have it, and would be a second
// implementation of the same interface).
//
// Invariants every Frontend keeps:
//   - The device behaves like a disk with a volatile write cache: a write is acknowledged once the
//     Backend has it; a flush (fsync of the device, FLUSH/FUA) returns only after Backend.Flush
//     returned for everything acknowledged before it, so a crash loses nothing a flush covered.
//   - Discard of a range reaches Backend.Trim, which frees the space.
//   - Expose is idempotent per volume ID: exposing an exposed volume returns its device.
//   - Remove flushes, detaches the device and stops serving the volume; removing a volume that is
//     not exposed is not an error.
//   - A Frontend never leaves a device it attached behind when Close returns, except devices still
//     in use (mounted), which it reports.
package frontend
