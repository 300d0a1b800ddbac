//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
)

// writeStream writes chunkSize chunks of random data at consecutive offsets through the CLI,
// one command per chunk, until stopped; it remembers the chunks the CLI acknowledged (exit 0).
type writeStream struct {
	mu     sync.Mutex
	ok     []written
	failed int
	cancel context.CancelFunc
	done   chan struct{}
}

func startWriteStream(ctx context.Context, volume string, base int64) *writeStream {
	ctx, cancel := context.WithCancel(ctx)
	w := &writeStream{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer GinkgoRecover()
		defer close(w.done)
		for i := int64(0); ctx.Err() == nil; i++ {
			off := base + i*chunkSize
			in := filepath.Join(s.work, fmt.Sprintf("chunk-%d.in", i))
			sum, err := randomFile(in, chunkSize)
			if err != nil {
				GinkgoWriter.Printf("write stream: %v\n", err)
				return
			}
			callCtx, callCancel := context.WithTimeout(ctx, 30*time.Second)
			_, err = s.cli.write(callCtx, volume, in, off, chunkSize)
			callCancel()
			w.mu.Lock()
			if err == nil {
				w.ok = append(w.ok, written{offset: off, size: chunkSize, sum: sum})
			} else if ctx.Err() == nil {
				w.failed++
				GinkgoWriter.Printf("write stream: chunk %d not acknowledged: %v\n", i, err)
			}
			w.mu.Unlock()
			if err != nil {
				time.Sleep(500 * time.Millisecond)
			}
		}
	}()
	return w
}

func (w *writeStream) acked() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.ok)
}

func (w *writeStream) failures() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failed
}

// stop ends the stream and returns the acknowledged writes. A write cut by stop is not
// acknowledged, whatever reached the store.
func (w *writeStream) stop() []written {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]written(nil), w.ok...)
}
