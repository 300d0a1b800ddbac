package fuseloop

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// TestIOFlusher checks that New marks every thread PR_SET_IO_FLUSHER when the binary is built
// without cgo (as the node daemon is), and reports that it could not otherwise. Run it with
// CGO_ENABLED=0 to exercise the first case.
func TestIOFlusher(t *testing.T) {
	f := newTestFrontend(t, Options{})
	capSysResource := hasCapability(t, unix.CAP_SYS_RESOURCE)
	if cgoEnabled || !capSysResource {
		if f.IOFlusher() {
			t.Fatalf("IOFlusher() = true, but cgo=%v and CAP_SYS_RESOURCE=%v", cgoEnabled, capSysResource)
		}
		t.Logf("PR_SET_IO_FLUSHER cannot apply here (cgo=%v, CAP_SYS_RESOURCE=%v); New reported so", cgoEnabled, capSysResource)
		return
	}
	if !f.IOFlusher() {
		t.Fatal("IOFlusher() = false in a binary without cgo, with CAP_SYS_RESOURCE")
	}
	// Threads started after New inherit the flag; look from several goroutines pinned to
	// threads, some of them new.
	errs := make(chan error, 16)
	for range 16 {
		go func() {
			runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
			v, err := unix.PrctlRetInt(unix.PR_GET_IO_FLUSHER, 0, 0, 0, 0)
			if err == nil && v != 1 {
				err = unix.EINVAL
			}
			errs <- err
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Fatalf("a thread is not PR_SET_IO_FLUSHER: %v", err)
		}
	}
}

// hasCapability reports whether the process has capability c in its effective set.
func hasCapability(t *testing.T, c int) bool {
	t.Helper()
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		t.Fatalf("capget: %v", err)
	}
	return data[c/32].Effective&(1<<(uint(c)%32)) != 0
}
