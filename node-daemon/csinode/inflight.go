package csinode

import (
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// inflight is the set of volumes a call is working on. A second call for the same volume gets
// Aborted, which the CSI sidecars and kubelet retry: two mounts of one volume never interleave.
type inflight struct {
	// mu guards the fields in this struct.
	mu struct {
		sync.Mutex
		ids map[string]string
	}
}

func newInflight() *inflight {
	f := &inflight{}
	f.mu.ids = make(map[string]string)
	return f
}

// acquire marks volumeID as busy with op and returns the function that releases it, or an
// Aborted status naming the operation in progress.
func (f *inflight) acquire(volumeID, op string) (func(), error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if cur, ok := f.mu.ids[volumeID]; ok {
		return nil, status.Errorf(codes.Aborted, "%s of volume %s is in progress; retry when it has finished (this call: %s)", cur, volumeID, op)
	}
	f.mu.ids[volumeID] = op
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.mu.ids, volumeID)
	}, nil
}
