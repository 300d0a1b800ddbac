package blockdev

import "runtime"

// MinIOProcs is the smallest GOMAXPROCS a process doing its I/O through FileDevice should run
// with. Every read and write is a blocking pread/pwrite that holds its goroutine's P (the Go
// scheduler's processor) until the runtime notices the syscall is slow and hands the P on; with
// GOMAXPROCS equal to a small CPU count (2 on the development machine), goroutines ready to
// issue their next I/O wait behind the blocked ones, and 4 KiB random reads at queue depth 16
// measured about half the IOPS they reach with 8 Ps, with a p99 several times higher. Extra Ps
// cost nothing while their goroutines sleep in syscalls.
const MinIOProcs = 8

// RaiseGOMAXPROCS sets GOMAXPROCS to MinIOProcs if it is lower and returns the value in effect.
// It is for main packages (the node daemon, benchmarks); a library must not change it.
func RaiseGOMAXPROCS() int {
	if n := runtime.GOMAXPROCS(0); n >= MinIOProcs {
		return n
	}
	runtime.GOMAXPROCS(MinIOProcs)
	return MinIOProcs
}
