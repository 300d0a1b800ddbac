package fuseloop

import (
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioctlPtr issues an ioctl whose argument is a pointer to *arg.
func ioctlPtr[T any](f *os.File, req uint, arg *T) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), uintptr(req), uintptr(unsafe.Pointer(arg)))
	runtime.KeepAlive(f)
	if errno != 0 {
		return errno
	}
	return nil
}
