package csinode

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// errReplicaClosed is what I/O on a replicated volume's backend gets once the node plugin closed
// it: the volume was unstaged, reopened at a newer generation, or the daemon is stopping.
var errReplicaClosed = errors.New("the replicated volume's backend on this node is closed (unstaged, reopened at a newer generation, or the node daemon is stopping)")

// servedReplica is an open replicated volume as the node plugin hands it to the frontend. It
// counts the calls in flight, so that the backend is closed only once the frontend stopped using
// it (ReplicatedBackend.Close requires that), and remembers whether its I/O found the volume
// fenced or without an in-sync copy, for NodeGetVolumeHealth. It is safe for concurrent use.
type servedReplica struct {
	backend ReplicatedBackend
	// gen is the attachment generation the backend was opened at.
	gen uint64
	// mu guards the fields in this struct.
	mu struct {
		sync.Mutex
		calls   int           // calls in flight
		closing bool          // no call may start any more
		drained chan struct{} // closed when calls reaches 0 while closing; nil when nobody waits
		fault   error         // the last I/O error wrapping ErrFenced (kept) or ErrNoInSyncCopy (until a call succeeds)
	}
}

func newServedReplica(b ReplicatedBackend, gen uint64) *servedReplica {
	return &servedReplica{backend: b, gen: gen}
}

// ReadAt implements frontend.Backend.
func (b *servedReplica) ReadAt(ctx context.Context, p []byte, off int64) error {
	return b.do(func() error { return b.backend.ReadAt(ctx, p, off) })
}

// WriteAt implements frontend.Backend.
func (b *servedReplica) WriteAt(ctx context.Context, p []byte, off int64) error {
	return b.do(func() error { return b.backend.WriteAt(ctx, p, off) })
}

// Flush implements frontend.Backend.
func (b *servedReplica) Flush(ctx context.Context) error {
	return b.do(func() error { return b.backend.Flush(ctx) })
}

// Trim implements frontend.Backend.
func (b *servedReplica) Trim(ctx context.Context, off, length int64) error {
	return b.do(func() error { return b.backend.Trim(ctx, off, length) })
}

// do runs one call of the frontend, unless the backend is closing.
func (b *servedReplica) do(call func() error) error {
	b.mu.Lock()
	if b.mu.closing {
		b.mu.Unlock()
		return errReplicaClosed
	}
	b.mu.calls++
	b.mu.Unlock()

	err := call()

	b.mu.Lock()
	defer b.mu.Unlock()
	b.mu.calls--
	switch {
	case errors.Is(err, ErrFenced):
		b.mu.fault = err // a fenced coordinator never serves again
	case errors.Is(err, ErrNoInSyncCopy):
		if !errors.Is(b.mu.fault, ErrFenced) {
			b.mu.fault = err
		}
	case err == nil && errors.Is(b.mu.fault, ErrNoInSyncCopy):
		b.mu.fault = nil // a copy came back
	}
	if b.mu.closing && b.mu.calls == 0 && b.mu.drained != nil {
		close(b.mu.drained)
		b.mu.drained = nil
	}
	return err
}

// fault returns the last I/O error that said the volume is fenced or has no in-sync copy, or nil.
func (b *servedReplica) fault() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mu.fault
}

// retire makes every later call fail with errReplicaClosed and waits for the calls in flight.
func (b *servedReplica) retire(ctx context.Context) error {
	b.mu.Lock()
	b.mu.closing = true
	if b.mu.calls == 0 {
		b.mu.Unlock()
		return nil
	}
	if b.mu.drained == nil {
		b.mu.drained = make(chan struct{})
	}
	drained, calls := b.mu.drained, b.mu.calls
	b.mu.Unlock()
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%d I/O calls of generation %d still in flight: %w", calls, b.gen, ctx.Err())
	}
}

// shutdown retires the backend and closes it. If ctx ends before the calls in flight have
// finished, the backend is closed anyway (without ctx's deadline): its own replica timeouts end
// those calls.
func (b *servedReplica) shutdown(ctx context.Context) error {
	if err := b.retire(ctx); err != nil {
		return errors.Join(err, b.backend.Close(context.WithoutCancel(ctx)))
	}
	return b.backend.Close(ctx)
}

// openReplicas is the set of replicated volumes a Server has open, by CSI volume ID. Once closed
// (Server.Close) it takes no more.
type openReplicas struct {
	// mu guards the fields in this struct.
	mu struct {
		sync.Mutex
		vols   map[string]*servedReplica
		closed bool
	}
}

func newOpenReplicas() *openReplicas {
	o := &openReplicas{}
	o.mu.vols = make(map[string]*servedReplica)
	return o
}

// get returns the open backend of volumeID, or nil.
func (o *openReplicas) get(volumeID string) *servedReplica {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.mu.vols[volumeID]
}

// put makes b the open backend of volumeID; it fails once the set is closed.
func (o *openReplicas) put(volumeID string, b *servedReplica) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.mu.closed {
		return errors.New("the node plugin is shutting down")
	}
	o.mu.vols[volumeID] = b
	return nil
}

// take removes and returns the open backend of volumeID, or nil.
func (o *openReplicas) take(volumeID string) *servedReplica {
	o.mu.Lock()
	defer o.mu.Unlock()
	b := o.mu.vols[volumeID]
	delete(o.mu.vols, volumeID)
	return b
}

// close empties the set, refuses every later put, and returns what it held.
func (o *openReplicas) close() map[string]*servedReplica {
	o.mu.Lock()
	defer o.mu.Unlock()
	vols := o.mu.vols
	o.mu.vols = make(map[string]*servedReplica)
	o.mu.closed = true
	return vols
}
