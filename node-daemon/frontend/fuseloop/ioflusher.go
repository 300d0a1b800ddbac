package fuseloop

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// setIOFlusher marks every thread of the process PR_SET_IO_FLUSHER: their memory allocations do
// not recurse into I/O reclaim (PF_MEMALLOC_NOIO) and they are not throttled as dirtiers
// (PF_LOCAL_THROTTLE). Threads created later inherit the flag from the thread that creates them,
// which has it too. Go can only change every thread at once when built without cgo
// (syscall.AllThreadsSyscall); with cgo this fails with ENOTSUP and nothing is changed.
func setIOFlusher() error {
	_, _, errno := syscall.AllThreadsSyscall6(syscall.SYS_PRCTL, unix.PR_SET_IO_FLUSHER, 1, 0, 0, 0, 0)
	if errno != 0 {
		return fmt.Errorf("prctl(PR_SET_IO_FLUSHER) on all threads: %w", errno)
	}
	return nil
}
