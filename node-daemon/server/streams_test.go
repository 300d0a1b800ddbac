package server

import (
	"context"
	"errors"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeStream feeds serveStream requests 0..n-1 and then end, and records the responses.
type fakeStream struct {
	n    int
	end  error
	next int

	mu   sync.Mutex
	sent []int
}

func (f *fakeStream) recv() (int, error) {
	if f.next >= f.n {
		return 0, f.end
	}
	f.next++
	return f.next - 1, nil
}

func (f *fakeStream) send(resp int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, resp)
	return nil
}

func (f *fakeStream) answered() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sent)
}

func TestServeStreamAnswersEveryRequestBeforeReturning(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  error
		want error
	}{
		{"end of the requests", io.EOF, nil},
		{"the stream breaks", errors.New("connection reset"), errors.New("connection reset")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeStream{n: 500, end: tc.end}
			handle := func(_ context.Context, req int) int {
				if req%7 == 0 {
					time.Sleep(time.Millisecond)
				}
				return req
			}
			err := serveStream(context.Background(), time.Minute, f.recv, handle, f.send)
			if (err == nil) != (tc.want == nil) || err != nil && err.Error() != tc.want.Error() {
				t.Fatalf("serveStream = %v, want %v", err, tc.want)
			}
			seen := make(map[int]bool)
			for _, r := range f.sent {
				seen[r] = true
			}
			if len(f.sent) != f.n || len(seen) != f.n {
				t.Fatalf("%d responses (%d distinct) to %d requests when serveStream returned", len(f.sent), len(seen), f.n)
			}
		})
	}
}

// Requests run concurrently, up to maxIOInFlight and never more.
func TestServeStreamBoundsRequestsInFlight(t *testing.T) {
	f := &fakeStream{n: 3 * maxIOInFlight, end: io.EOF}
	var running, peak atomic.Int64
	release := make(chan struct{})
	handle := func(_ context.Context, req int) int {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		running.Add(-1)
		return req
	}
	done := make(chan error, 1)
	go func() { done <- serveStream(context.Background(), time.Minute, f.recv, handle, f.send) }()
	deadline := time.Now().Add(10 * time.Second)
	for running.Load() < maxIOInFlight {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests running, want %d at once", running.Load(), maxIOInFlight)
		}
		time.Sleep(time.Millisecond)
	}
	// Every worker is busy: nothing more runs until one is released.
	time.Sleep(50 * time.Millisecond)
	if n := running.Load(); n != maxIOInFlight {
		t.Fatalf("%d requests running with every worker busy, want %d", n, maxIOInFlight)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if p := peak.Load(); p != maxIOInFlight {
		t.Fatalf("peak %d requests in flight, want %d", p, maxIOInFlight)
	}
	if n := f.answered(); n != f.n {
		t.Fatalf("%d of %d requests answered", n, f.n)
	}
}

// The stream's context ending while every worker is busy ends serveStream with its error, once the
// requests it took were answered.
func TestServeStreamEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	f := &fakeStream{n: maxIOInFlight + 1, end: io.EOF}
	release := make(chan struct{})
	var running atomic.Int64
	handle := func(_ context.Context, req int) int {
		running.Add(1)
		<-release
		return req
	}
	done := make(chan error, 1)
	go func() { done <- serveStream(ctx, time.Minute, f.recv, handle, f.send) }()
	for running.Load() < maxIOInFlight {
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		t.Fatalf("serveStream returned %v with requests still running", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("serveStream = %v, want %v", err, context.Canceled)
	}
	if n := f.answered(); n != maxIOInFlight {
		t.Fatalf("%d requests answered, want the %d that ran", n, maxIOInFlight)
	}
}

// Workers that have been idle for the idle time exit while the stream stays open, and new ones
// start for the requests that come later.
func TestServeStreamWorkersExitWhenIdle(t *testing.T) {
	base := runtime.NumGoroutine()
	reqs := make(chan int)
	recv := func() (int, error) {
		r, ok := <-reqs
		if !ok {
			return 0, io.EOF
		}
		return r, nil
	}
	f := &fakeStream{}
	release := make(chan struct{})
	handle := func(_ context.Context, req int) int {
		<-release
		return req
	}
	done := make(chan error, 1)
	go func() { done <- serveStream(context.Background(), 20*time.Millisecond, recv, handle, f.send) }()
	for i := range 10 {
		reqs <- i // ten at once: ten workers
	}
	close(release)
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d goroutines, %d requests answered", what, runtime.NumGoroutine()-base, f.answered())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("the ten requests answered", func() bool { return f.answered() == 10 })
	// What is left: the serveStream loop, waiting in recv.
	waitFor("the idle workers exit", func() bool { return runtime.NumGoroutine() <= base+1 })
	reqs <- 10
	waitFor("a request after the workers exited answered", func() bool { return f.answered() == 11 })
	close(reqs)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
