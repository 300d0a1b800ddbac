package server

import (
	"context"
	"errors"
	"io"
	"sync"
)

// maxIOInFlight bounds the requests of one multiplexed stream (IO, Replicate) that run at once;
// the stream stops reading requests while that many are running.
const maxIOInFlight = 64

// serveStream runs the requests of a multiplexed stream: recv returns them in order, each is
// handled by one of at most maxIOInFlight workers, and its response is sent as soon as it is
// handled (responses in completion order, one send at a time). A worker starts when a request
// finds none idle and lives as long as the stream, so a request pays neither for a new goroutine
// nor for growing its stack again. serveStream returns nil at the end of the requests (io.EOF),
// recv's error, or the stream context's once it ended while every worker was busy, and only
// after every request it received has been answered. A failed send means the stream is gone: the
// next recv reports it.
func serveStream[Req, Resp any](ctx context.Context, recv func() (Req, error), handle func(context.Context, Req) Resp, send func(Resp) error) error {
	var (
		sendMu  sync.Mutex
		wg      sync.WaitGroup
		work    = make(chan Req)
		workers int
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
		if workers < maxIOInFlight {
			workers++
			wg.Go(func() {
				serve(req)
				for req := range work {
					serve(req)
				}
			})
			continue
		}
		select {
		case work <- req:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
