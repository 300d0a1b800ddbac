package blockdev_test

import (
	"runtime"
	"testing"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
)

func TestRaiseGOMAXPROCS(t *testing.T) {
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	if got := blockdev.RaiseGOMAXPROCS(); got != blockdev.MinIOProcs || runtime.GOMAXPROCS(0) != blockdev.MinIOProcs {
		t.Fatalf("RaiseGOMAXPROCS from 1 = %d, GOMAXPROCS now %d, want %d", got, runtime.GOMAXPROCS(0), blockdev.MinIOProcs)
	}
	runtime.GOMAXPROCS(blockdev.MinIOProcs + 3)
	if got := blockdev.RaiseGOMAXPROCS(); got != blockdev.MinIOProcs+3 || runtime.GOMAXPROCS(0) != blockdev.MinIOProcs+3 {
		t.Fatalf("RaiseGOMAXPROCS lowered GOMAXPROCS from %d to %d", blockdev.MinIOProcs+3, got)
	}
}
