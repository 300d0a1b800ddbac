package controller

import "sync"

// inflight is the set of Volume names with an operation in progress: two calls for the same
// volume never run at once (the second is answered Aborted, as aws-ebs-csi-driver does), so a
// sidecar's retry cannot race the attempt it retries.
type inflight struct {
	mu struct {
		sync.Mutex
		names map[string]bool
	}
}

// begin marks name in flight; false when it already is.
func (f *inflight) begin(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.mu.names[name] {
		return false
	}
	if f.mu.names == nil {
		f.mu.names = map[string]bool{}
	}
	f.mu.names[name] = true
	return true
}

// end clears name.
func (f *inflight) end(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.mu.names, name)
}
