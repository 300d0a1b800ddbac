package server

import (
	"errors"
	"fmt"
	"sync"
)

// errInFlight: another create, delete or resize of the same volume is running.
var errInFlight = errors.New("an operation on this volume is already in flight")

// inFlight admits one control operation (create, delete, resize) per volume at a time; a second
// one gets errInFlight (Aborted) and may retry, as CSI drivers do. Data I/O is not guarded.
type inFlight struct {
	// mu guards the fields in this struct.
	mu struct {
		sync.Mutex
		keys map[string]string // key -> operation holding it
	}
}

func newInFlight() *inFlight {
	f := &inFlight{}
	f.mu.keys = make(map[string]string)
	return f
}

// acquire claims key for op and returns the release function, or errInFlight.
func (f *inFlight) acquire(key, op string) (release func(), err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if held, ok := f.mu.keys[key]; ok {
		return nil, fmt.Errorf("%s %s: %s is running: %w", op, key, held, errInFlight)
	}
	f.mu.keys[key] = op
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.mu.keys, key)
	}, nil
}
