// Package eiodev is a block device for tests that fails with a real EIO when the test says so:
// the Linux I/O path from the device's user down to the error is the one a dying disk takes, with
// no device-mapper, null_blk or fault-injection framework in the kernel. It is test support: no
// production code imports it.
//
// A Backend is a frontend.Backend over a sparse file (pread, pwrite, fdatasync, and a punched hole
// for Trim) with a switch, Backend.SetMode. A Device serves a Backend through package fuseloop (a
// FUSE file with direct I/O under a direct-I/O loop device), so a process that opens
// Device.Path() reads and writes /dev/loopN like a disk, and every Backend call that fails
// reaches it as EIO: on read, on write and on fsync, also through a descriptor it opened
// before the switch flipped.
//
// Modes:
//   - Healthy: every call goes to the file.
//   - FailWrites: WriteAt, Flush and Trim fail with EIO, ReadAt still reads (a disk that went
//     read-only under its user, or lost its write path).
//   - FailAll: every call fails with EIO.
//
// Invariants:
//   - A call that starts after SetMode returned sees the new mode; a call already in the file
//     finishes as it started. A failed call does not touch the file: what was written before the
//     switch stays readable, and reads it again once the device is healthy.
//   - Failed calls are counted per kind (Backend.Failures), so a test can tell the device failed
//     I/O of its user and not merely that the switch flipped.
//   - The Device is served by the process that made it (goroutines of the test binary); if that
//     process dies, the kernel aborts the FUSE connection and every I/O on the device fails with
//     EIO until its last user closes it, when autoclear frees the loop device.
//   - Device.Close never leaves the mount or the loop device behind and never hangs: it heals the
//     switch (so fuseloop's final flush succeeds) and closes the frontend within a bound; past it,
//     it aborts the FUSE connection through fusectl (every request waiting on it fails), unmounts
//     lazily and detaches the loop device. A device a process still holds open is detached by the
//     kernel at its last close (autoclear); Close reports it.
//
// Devices need root, /dev/fuse and /dev/loop-control (Available says whether they are there).
package eiodev
