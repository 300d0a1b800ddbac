package replica

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const fakeSize = 1 << 20

// threeFakes returns a local replica "a" and remote replicas "b" and "c".
func threeFakes(events *eventLog) (a, b, c *fakeReplica) {
	return newFake("a", fakeSize, events), newFake("b", fakeSize, events), newFake("c", fakeSize, events)
}

func openCoordinator(t *testing.T, gen uint64, rec InSyncRecorder, timeout time.Duration, local Replica, remotes ...Replica) *Coordinator {
	t.Helper()
	c, err := Open(context.Background(), Config{Generation: gen, Local: local, Remotes: remotes, Recorder: rec, RegionSize: 4096, ReplicaTimeout: timeout})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return c
}

func TestWriteGoesToEveryReplicaAndReadsPreferTheLocalOne(t *testing.T) {
	a, b, c := threeFakes(nil)
	rec := &fakeRecorder{}
	co := openCoordinator(t, 3, rec, time.Second, a, b, c)
	ctx := context.Background()
	data := bytes.Repeat([]byte{0xab}, 8192)
	if err := co.Write(ctx, 4096, data); err != nil {
		t.Fatalf("Write: %v", err)
	}
	for _, f := range []*fakeReplica{a, b, c} {
		if !bytes.Equal(f.bytes(4096, 8192), data) {
			t.Errorf("replica %s lacks the acknowledged write", f.name)
		}
		for _, g := range f.gens {
			if g != 3 {
				t.Errorf("replica %s got a request of generation %d, want 3", f.name, g)
			}
		}
	}
	got, err := co.Read(ctx, 4096, 8192)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Read = %v", err)
	}
	if a.readCount() != 1 || b.readCount()+c.readCount() != 0 {
		t.Fatalf("reads: local %d, remote %d; want all from the local replica", a.readCount(), b.readCount()+c.readCount())
	}
	if rec.calls != 0 || len(co.InSync()) != 3 {
		t.Fatalf("drops recorded %d, in sync %v", rec.calls, co.InSync())
	}
	if got := co.Dirty().Extents("b"); len(got) != 0 {
		t.Fatalf("dirty regions with every replica in sync: %v", got)
	}
}

func TestWriteFailures(t *testing.T) {
	tests := []struct {
		name string
		// setup breaks replicas of a, b, c and the recorder.
		setup      func(a, b, c *fakeReplica, rec *fakeRecorder)
		timeout    time.Duration
		wantErr    error  // nil: the write is acknowledged
		wantErrMsg string // a part of the error's message
		wantInSync []string
		wantDrops  []string
	}{
		{
			name: "one replica fails: dropped, recorded, write acknowledged",
			setup: func(_, b, _ *fakeReplica, _ *fakeRecorder) {
				b.writeHook = func(context.Context) error { return errDisk }
			},
			wantInSync: []string{"a", "c"},
			wantDrops:  []string{"b"},
		},
		{
			name: "the local replica fails: dropped, recorded, write acknowledged",
			setup: func(a, _, _ *fakeReplica, _ *fakeRecorder) {
				a.writeHook = func(context.Context) error { return errDisk }
			},
			wantInSync: []string{"b", "c"},
			wantDrops:  []string{"a"},
		},
		{
			name: "every replica fails: write fails, nobody dropped",
			setup: func(a, b, c *fakeReplica, _ *fakeRecorder) {
				for _, f := range []*fakeReplica{a, b, c} {
					f.writeHook = func(context.Context) error { return errDisk }
				}
			},
			wantErr:    errDisk,
			wantErrMsg: "failed on every in-sync replica",
			wantInSync: []string{"a", "b", "c"},
		},
		{
			name: "recording the drop fails: write fails, replica stays in sync",
			setup: func(_, b, _ *fakeReplica, rec *fakeRecorder) {
				b.writeHook = func(context.Context) error { return errDisk }
				rec.err = errors.New("API server unreachable")
			},
			wantErrMsg: "dropping it was not recorded",
			wantInSync: []string{"a", "b", "c"},
		},
		{
			name: "slow replica within the timeout: waited for, nobody dropped",
			setup: func(_, b, _ *fakeReplica, _ *fakeRecorder) {
				b.writeHook = func(context.Context) error { time.Sleep(20 * time.Millisecond); return nil }
			},
			timeout:    5 * time.Second,
			wantInSync: []string{"a", "b", "c"},
		},
		{
			name: "replica slower than the timeout: dropped",
			setup: func(_, _, c *fakeReplica, _ *fakeRecorder) {
				c.writeHook = func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
			},
			timeout:    50 * time.Millisecond,
			wantInSync: []string{"a", "b"},
			wantDrops:  []string{"c"},
		},
		{
			name:       "a replica has a newer generation: fenced, nobody dropped",
			setup:      func(_, b, _ *fakeReplica, _ *fakeRecorder) { b.mu.Lock(); b.stale = 8; b.mu.Unlock() },
			wantErr:    ErrFenced,
			wantInSync: []string{"a", "b", "c"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b, c := threeFakes(nil)
			rec := &fakeRecorder{}
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 5 * time.Second
			}
			co := openCoordinator(t, 7, rec, timeout, a, b, c)
			tt.setup(a, b, c, rec)
			ctx := context.Background()
			data := bytes.Repeat([]byte{0x5a}, 4096)
			err := co.Write(ctx, 8192, data)
			switch {
			case tt.wantErr == nil && tt.wantErrMsg == "":
				if err != nil {
					t.Fatalf("Write = %v, want acknowledged", err)
				}
			default:
				if err == nil {
					t.Fatal("Write acknowledged, want an error")
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Fatalf("Write = %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErrMsg) {
					t.Fatalf("Write = %v, want a message containing %q", err, tt.wantErrMsg)
				}
			}
			if got := co.InSync(); !slices.Equal(got, tt.wantInSync) {
				t.Fatalf("in sync = %v, want %v", got, tt.wantInSync)
			}
			drops := rec.droppedNames()
			var names []string
			for n, reason := range drops {
				names = append(names, n)
				if !strings.Contains(reason, "write at 8192") {
					t.Errorf("drop reason of %s = %q, want the failed write named", n, reason)
				}
			}
			slices.Sort(names)
			if !slices.Equal(names, tt.wantDrops) {
				t.Fatalf("recorded drops %v, want %v", names, tt.wantDrops)
			}
			if err != nil {
				return
			}
			// Acknowledged: every in-sync replica has it; every dropped one has the range dirty.
			byName := map[string]*fakeReplica{"a": a, "b": b, "c": c}
			for _, n := range tt.wantInSync {
				if !bytes.Equal(byName[n].bytes(8192, 4096), data) {
					t.Errorf("in-sync replica %s lacks the acknowledged write", n)
				}
			}
			for _, n := range tt.wantDrops {
				if got := co.Dirty().Extents(n); !slices.Equal(got, []Extent{{8192, 4096}}) {
					t.Errorf("dirty regions of dropped %s = %v, want the failed write", n, got)
				}
			}
			// Later writes skip the dropped replicas and mark them dirty; reads still work.
			if err := co.Write(ctx, 65536, data); err != nil {
				t.Fatalf("write after the drop: %v", err)
			}
			for _, n := range tt.wantDrops {
				if got := co.Dirty().Extents(n); !slices.Equal(got, []Extent{{8192, 4096}, {65536, 4096}}) {
					t.Errorf("dirty regions of dropped %s after a second write = %v", n, got)
				}
				if !bytes.Equal(byName[n].bytes(65536, 4096), make([]byte, 4096)) {
					t.Errorf("dropped replica %s still got a write", n)
				}
			}
			if got, err := co.Read(ctx, 65536, 4096); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read after the drop = %v", err)
			}
		})
	}
}

func TestFencedCoordinatorRefusesEverything(t *testing.T) {
	a, b, c := threeFakes(nil)
	rec := &fakeRecorder{}
	co := openCoordinator(t, 4, rec, time.Second, a, b, c)
	c.mu.Lock()
	c.stale = 5 // a coordinator of generation 5 claimed c
	c.mu.Unlock()
	ctx := context.Background()
	if err := co.Write(ctx, 0, []byte{1}); !errors.Is(err, ErrFenced) || !errors.Is(err, ErrStaleGeneration) {
		t.Fatalf("Write = %v, want ErrFenced wrapping ErrStaleGeneration", err)
	}
	if got := co.Dirty().Extents("c"); !slices.Equal(got, []Extent{{0, 4096}}) {
		t.Fatalf("dirty regions of the replica that refused = %v", got)
	}
	for name, call := range map[string]func() error{
		"write": func() error { return co.Write(ctx, 0, []byte{1}) },
		"trim":  func() error { return co.Trim(ctx, 0, 4096) },
		"flush": func() error { return co.Flush(ctx) },
		"read":  func() error { _, err := co.Read(ctx, 0, 1); return err },
	} {
		if err := call(); !errors.Is(err, ErrFenced) {
			t.Errorf("%s after fencing = %v, want ErrFenced", name, err)
		}
	}
	if rec.calls != 0 {
		t.Fatalf("a fenced coordinator recorded %d drops", rec.calls)
	}
	// Open with an older generation than a replica's is refused outright.
	if _, err := Open(ctx, Config{Generation: 4, Local: a, Remotes: []Replica{b, c}, Recorder: rec}); !errors.Is(err, ErrFenced) {
		t.Fatalf("Open of an older generation = %v, want ErrFenced", err)
	}
}

func TestFlushWaitsForEarlierWrites(t *testing.T) {
	events := &eventLog{}
	a, b, c := threeFakes(events)
	co := openCoordinator(t, 1, &fakeRecorder{}, 10*time.Second, a, b, c)
	release := make(chan struct{})
	started := make(chan struct{})
	b.writeHook = func(context.Context) error { close(started); <-release; return nil }
	ctx := context.Background()
	writeDone := make(chan error, 1)
	go func() { writeDone <- co.Write(ctx, 0, []byte("first")) }()
	<-started
	flushDone := make(chan error, 1)
	go func() {
		err := co.Flush(ctx)
		events.add("flush returned")
		flushDone <- err
	}()
	// Give a wrong Flush the chance to overtake the write; a right one waits for the release.
	select {
	case err := <-flushDone:
		t.Fatalf("Flush returned (%v) while a write that started before it was in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	events.add("write released")
	close(release)
	if err := <-writeDone; err != nil {
		t.Fatal(err)
	}
	if err := <-flushDone; err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b", "c"} {
		// The claim at Open was each replica's first flush; the second one is this Flush's.
		flushes := 0
		events.mu.Lock()
		last := -1
		for i, e := range events.events {
			if e == n+" flush" {
				flushes++
				last = i
			}
		}
		events.mu.Unlock()
		if flushes != 2 || last < events.index(n+" write done") {
			t.Errorf("replica %s: flush at %d, its write done at %d (flushes %d): %v", n, last, events.index(n+" write done"), flushes, events.events)
		}
	}
	if events.index("flush returned") < events.index("write released") {
		t.Fatalf("flush returned before the earlier write completed: %v", events.events)
	}
}

func TestFlushFailureDropsTheReplica(t *testing.T) {
	a, b, c := threeFakes(nil)
	rec := &fakeRecorder{}
	co := openCoordinator(t, 1, rec, time.Second, a, b, c)
	c.flushHook = func(context.Context) error { return errDisk }
	if err := co.Flush(context.Background()); err != nil {
		t.Fatalf("Flush = %v, want acknowledged without c", err)
	}
	if got := co.InSync(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("in sync = %v", got)
	}
	if _, ok := rec.droppedNames()["c"]; !ok {
		t.Fatal("the drop of c was not recorded")
	}
}

func TestReadFallsBackToAnInSyncRemote(t *testing.T) {
	a, b, c := threeFakes(nil)
	rec := &fakeRecorder{}
	co := openCoordinator(t, 1, rec, time.Second, a, b, c)
	ctx := context.Background()
	if err := co.Write(ctx, 0, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	// A read failure on the local replica tries the next one and drops nobody.
	a.mu.Lock()
	a.readErr = errDisk
	a.mu.Unlock()
	if got, err := co.Read(ctx, 0, 5); err != nil || string(got) != "hello" {
		t.Fatalf("Read = %q, %v", got, err)
	}
	if b.readCount() != 1 || rec.calls != 0 {
		t.Fatalf("remote reads %d, drops %d", b.readCount(), rec.calls)
	}
	// Once the local replica is out of sync, reads go to a remote one first.
	a.writeHook = func(context.Context) error { return errDisk }
	if err := co.Write(ctx, 0, []byte("world")); err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	a.readErr = nil
	a.mu.Unlock()
	if got, err := co.Read(ctx, 0, 5); err != nil || string(got) != "world" {
		t.Fatalf("Read = %q, %v", got, err)
	}
	if a.readCount() != 1 || b.readCount() != 2 {
		t.Fatalf("local reads %d (want only the failed one), remote %d", a.readCount(), b.readCount())
	}
	// Every in-sync replica failing the read fails it.
	b.mu.Lock()
	b.readErr = errDisk
	b.mu.Unlock()
	c.mu.Lock()
	c.readErr = errDisk
	c.mu.Unlock()
	if _, err := co.Read(ctx, 0, 5); !errors.Is(err, errDisk) {
		t.Fatalf("Read with every replica failing = %v", err)
	}
}

func TestConcurrentFailuresRecordOneDrop(t *testing.T) {
	a, b, c := threeFakes(nil)
	rec := &fakeRecorder{} // fails when the same replica is recorded twice
	co := openCoordinator(t, 1, rec, time.Second, a, b, c)
	b.writeHook = func(context.Context) error { return errDisk }
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- co.Write(context.Background(), int64(i)*4096, []byte{byte(i)})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Write = %v", err)
		}
	}
	if rec.calls != 1 {
		t.Fatalf("DropReplica called %d times, want once", rec.calls)
	}
	if got := co.Dirty().Bytes("b"); got != 32*4096 {
		t.Fatalf("dirty bytes of b = %d, want every write's region", got)
	}
}

func TestOpenValidation(t *testing.T) {
	a, b, _ := threeFakes(nil)
	dup := newFake("a", fakeSize, nil)
	rec := &fakeRecorder{}
	tests := []struct {
		name string
		cfg  Config
	}{
		{"generation 0", Config{Local: a, Recorder: rec}},
		{"no recorder", Config{Generation: 1, Local: a}},
		{"no replica", Config{Generation: 1, Recorder: rec}},
		{"duplicate name", Config{Generation: 1, Local: a, Remotes: []Replica{b, dup}, Recorder: rec}},
		{"bad region size", Config{Generation: 1, Local: a, Recorder: rec, RegionSize: 1000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Open(context.Background(), tt.cfg); err == nil {
				t.Fatal("Open accepted a bad configuration")
			}
		})
	}
}

func TestCallerCancelDoesNotSplitAWrite(t *testing.T) {
	a, b, c := threeFakes(nil)
	rec := &fakeRecorder{}
	co := openCoordinator(t, 1, rec, 10*time.Second, a, b, c)
	started, release := make(chan struct{}), make(chan struct{})
	b.writeHook = func(ctx context.Context) error {
		close(started)
		<-release
		return ctx.Err() // fails if the caller's cancellation reached the replica
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- co.Write(ctx, 0, []byte("data")) }()
	<-started
	cancel()
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Write = %v, want it completed on every replica", err)
	}
	for _, f := range []*fakeReplica{a, b, c} {
		if string(f.bytes(0, 4)) != "data" {
			t.Errorf("replica %s lacks the write", f.name)
		}
	}
	if rec.calls != 0 || len(co.InSync()) != 3 {
		t.Fatalf("drops %d, in sync %v", rec.calls, co.InSync())
	}
}
