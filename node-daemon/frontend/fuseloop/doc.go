// Package fuseloop is the frontend.Frontend for kernels with FUSE and loop devices but no ublk
// or nbd: one FUSE file system (github.com/hanwen/go-fuse/v2) serves each exposed volume as a
// regular file named by its volume ID, and a loop device with direct I/O turns that file into a
// block device.
//
// # Data path
//
// A Pod's I/O on /dev/loopN goes through the loop driver, which reads and writes the FUSE file
// with direct asynchronous I/O, to this process, which calls the volume's frontend.Backend:
//
//	READ -> Backend.ReadAt           WRITE -> Backend.WriteAt
//	FSYNC (device fsync, REQ_PREFLUSH/FUA) -> Backend.Flush
//	FALLOCATE PUNCH_HOLE|KEEP_SIZE (discard; write-zeroes that may unmap) -> Backend.Trim
//	FALLOCATE ZERO_RANGE|KEEP_SIZE (write-zeroes with REQ_NOUNMAP) -> Backend.WriteAt of zeros
//	other FALLOCATE modes -> EOPNOTSUPP; a failed Backend call -> EIO for the Pod
//
// FLUSH, which the kernel sends at every close, is not a Backend.Flush: close promises nothing.
//
// Invariants, on top of those of package frontend:
//   - The daemon sees every I/O: kernel passthrough is never negotiated (CAP_PASSTHROUGH is
//     disabled and no open returns a backing descriptor).
//   - No page cache for a volume file: opens return FOPEN_DIRECT_IO, and the loop device runs
//     with LO_FLAGS_DIRECT_IO (Expose fails if the kernel does not enable it). Data is cached
//     only in the Pod's own page cache above the device, never twice.
//   - A write is acknowledged only after Backend.WriteAt returned, so a flush that reaches
//     Backend.Flush covers every write acknowledged before it.
//   - Requests are served concurrently (CAP_ASYNC_DIO, FOPEN_PARALLEL_DIRECT_WRITES, up to
//     Options.MaxBackground in flight) and the I/O path takes no lock: Backend calls may block.
//   - Control operations on one volume are serialized; on different volumes they are not.
//   - The FUSE connection ends with this process: no process it starts (mkfs and mount for the
//     CSI node plugin) inherits a /dev/fuse descriptor (go-fuse opens it without O_CLOEXEC; New
//     sets FD_CLOEXEC before any exec can happen), so a child cannot keep the connection up
//     unserved after a death, with every I/O to the devices waiting instead of failing.
//
// # Devices
//
// Devices have a 4096-byte logical block size by default (Options.BlockSize): it works with
// direct I/O on this file system, the engine gets no I/O smaller or less aligned than its 4 KiB
// blocks, and file systems made on the device use 4 KiB sectors. 512 is available for consumers
// that need it. Volume sizes must be multiples of the block size.
//
// Requests are up to Options.MaxWrite (1 MiB, capped at /proc/sys/fs/fuse/max_pages_limit
// pages); the loop device itself splits bios at 128 segments of at most 64 KiB, so I/O from
// scattered pages arrives in requests of 512 KiB or a little more.
//
// Each device is held open by this process and attached with LO_FLAGS_AUTOCLEAR, so the kernel
// detaches it when its last opener closes it. Remove fsyncs the device (Backend.Flush), then
// LOOP_CLR_FD: the device is detached at once when nobody else has it open; otherwise Remove
// returns frontend.ErrDeviceBusy, keeps serving, and the kernel detaches the device when its
// last user (a mounted file system) closes it; a later Remove then finishes.
//
// # When the daemon dies
//
// If the process dies (kill -9, crash, OOM), the kernel aborts the FUSE connection. What a Pod
// using the device sees: every read, write and flush on /dev/loopN fails with EIO (the file
// system on it typically shuts down or remounts read-only); nothing it wrote before is lost that a
// completed flush covered. Devices nobody has open are detached by the kernel at once
// (autoclear: the daemon was their only opener). Devices still open (mounted) stay bound to
// the dead file, failing with EIO, until their last user closes them; then autoclear frees them.
// A device never comes back to life: the CSI node plugin must expose the volume again (a new
// /dev/loopM) and remount it, after the old mount is gone.
//
// New cleans up at Options.MountDir after such a death: it refuses a directory a live FUSE
// server or another file system is mounted on, detaches (LOOP_CLR_FD) loop devices whose backing
// file lies under MountDir, and lazily unmounts (MNT_DETACH) the dead mounts. Devices still in
// use cannot be freed at once: they are listed in Recovery.Busy (and logged) and are freed by
// autoclear later. Then New mounts afresh.
//
// A previous process can also be stuck instead of dead: killed while one of its threads waited in
// the kernel for I/O to one of its own loop devices (an fsync or detach in Remove), it cannot
// exit, so its connection stays open and answers nothing, and everything that touches those
// loop devices (losetup -a included) waits with it. New takes a server at MountDir that does not
// answer a stat within Options.StuckTimeout for such a process and aborts its connection through
// fusectl (/sys/fs/fuse/connections/<dev>/abort, mounting fusectl if needed): the waiting I/O
// fails with EIO, the old process exits, and recovery goes on as after a death. MountDir belongs
// to one daemon, so no other server is aborted.
//
// # Reclaim deadlocks
//
// This process sits in the kernel's writeback path: reclaim may wait on a loop device that waits
// on this process. Guards: direct I/O on both layers (no dirty page cache of the FUSE file to
// write back through the daemon), and PR_SET_IO_FLUSHER on every thread of the process (its
// allocations do not recurse into I/O reclaim and it is not throttled as a dirtier). The prctl
// needs CAP_SYS_RESOURCE and a binary built without cgo (syscall.AllThreadsSyscall), as the node
// daemon is; otherwise New logs that it runs without it (Frontend.IOFlusher reports which). It
// applies to the whole process, engine included, which is what serving writeback requires.
// Locking memory (mlockall) is not done: with the Go heap it would pin far more than the I/O
// path needs.
package fuseloop
