package server

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// maxIOInFlight bounds the requests of one multiplexed stream (IO, Replicate) that run at once;
// the stream stops reading requests while that many are running.
const maxIOInFlight = 64

// streamWorkerIdle is how long a stream's worker waits for a request before it exits: a stream
// that was busy once does not keep its peak of workers (and their stacks) for as long as it
// stays open.
const streamWorkerIdle = 30 * time.Second

// serveStream runs the requests of a multiplexed stream: recv returns them in order, each is
// handled by one of at most maxIOInFlight workers, and its response is sent as soon as it is
// handled (responses in completion order, one send at a time). A worker starts when a request
// finds none idle and serves the stream's requests until it has been idle for idle, so a request
// pays neither for a new goroutine nor for growing its stack again. serveStream returns nil at
// the end of the requests (io.EOF), recv's error, or the stream context's once it ended while
// every worker was busy, and only after every request it received has been answered. A failed
// send means the stream is gone: the next recv reports it.
func serveStream[Req, Resp any](ctx context.Context, idle time.Duration, recv func() (Req, error), handle func(context.Context, Req) Resp, send func(Resp) error) error {
	var (
		sendMu  sync.Mutex
		wg      sync.WaitGroup
		work    = make(chan Req)
		workers atomic.Int32 // started by this loop only, so never more than maxIOInFlight
		exited  = make(chan struct{}, 1)
	)
	defer func() {
		close(work)
		wg.Wait()
	}()
	serve := func(req Req) {
		resp := handle(ctx, req)
		sendMu.Lock()
		defer sendMu.Unlock()
		_ = send(resp)
	}
	worker := func(req Req) {
		defer func() {
			workers.Add(-1)
			select {
			case exited <- struct{}{}:
			default:
			}
		}()
		serve(req)
		t := time.NewTimer(idle)
		defer t.Stop()
		for {
			select {
			case req, ok := <-work:
				if !ok {
					return
				}
				serve(req)
				t.Reset(idle)
			case <-t.C:
				return
			}
		}
	}
	for {
		req, err := recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		select {
		case work <- req: // an idle worker took it
			continue
		default:
		}
		// No worker is idle: start one while fewer than maxIOInFlight run, or else give the
		// request to the first to finish (or start one in place of a worker that exits
		// meanwhile, its idle time having run out just as the request came).
		for taken := false; !taken; {
			if workers.Load() < maxIOInFlight {
				workers.Add(1)
				wg.Go(func() { worker(req) })
				break
			}
			select {
			case work <- req:
				taken = true
			case <-exited:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}
