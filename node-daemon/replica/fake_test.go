package replica

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// fakeReplica is an in-memory replica whose behavior a test sets: writeHook runs before each
// write (and trim) is applied and may fail it or wait; a non-zero stale makes every request of an
// older generation fail as a real replica does.
type fakeReplica struct {
	name      string
	writeHook func(ctx context.Context) error
	flushHook func(ctx context.Context) error
	readErr   error
	events    *eventLog

	mu    sync.Mutex
	data  []byte
	gens  []uint64 // generation of every request
	reads int
	stale uint64
}

func newFake(name string, size int, events *eventLog) *fakeReplica {
	return &fakeReplica{name: name, data: make([]byte, size), events: events}
}

func (f *fakeReplica) Name() string { return f.name }

func (f *fakeReplica) check(gen uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gens = append(f.gens, gen)
	if gen < f.stale {
		return &StaleError{Requested: gen, Recorded: f.stale}
	}
	return nil
}

func (f *fakeReplica) Write(ctx context.Context, gen uint64, off int64, data []byte) error {
	if err := f.check(gen); err != nil {
		return err
	}
	f.events.add(f.name + " write start")
	if f.writeHook != nil {
		if err := f.writeHook(ctx); err != nil {
			return err
		}
	}
	f.mu.Lock()
	copy(f.data[off:], data)
	f.mu.Unlock()
	f.events.add(f.name + " write done")
	return nil
}

func (f *fakeReplica) Trim(ctx context.Context, gen uint64, off, length int64) error {
	return f.Write(ctx, gen, off, make([]byte, length))
}

func (f *fakeReplica) Flush(ctx context.Context, gen uint64) error {
	if err := f.check(gen); err != nil {
		return err
	}
	f.events.add(f.name + " flush")
	if f.flushHook != nil {
		return f.flushHook(ctx)
	}
	return nil
}

func (f *fakeReplica) Read(_ context.Context, gen uint64, off, length int64) ([]byte, error) {
	if err := f.check(gen); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if f.readErr != nil {
		return nil, f.readErr
	}
	return append([]byte(nil), f.data[off:off+length]...), nil
}

func (f *fakeReplica) bytes(off, length int) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]byte(nil), f.data[off:off+length]...)
}

func (f *fakeReplica) readCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

// eventLog is the order in which things happened across replicas and the test.
type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *eventLog) add(e string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

// index returns the position of event e, or -1.
func (l *eventLog) index(e string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, x := range l.events {
		if x == e {
			return i
		}
	}
	return -1
}

// fakeRecorder records drops, or fails them with err.
type fakeRecorder struct {
	mu      sync.Mutex
	err     error
	dropped map[string]string // replica -> reason
	calls   int
}

func (r *fakeRecorder) DropReplica(_ context.Context, replica, reason string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.err != nil {
		return r.err
	}
	if r.dropped == nil {
		r.dropped = make(map[string]string)
	}
	if _, ok := r.dropped[replica]; ok {
		return fmt.Errorf("replica %s recorded as dropped twice", replica)
	}
	r.dropped[replica] = reason
	return nil
}

func (r *fakeRecorder) droppedNames() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]string, len(r.dropped))
	for k, v := range r.dropped {
		out[k] = v
	}
	return out
}

var errDisk = errors.New("injected disk error")
