package volbench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// Pattern is the access pattern of a workload.
type Pattern string

// Patterns.
const (
	RandWrite Pattern = "randwrite"
	RandRead  Pattern = "randread"
	SeqWrite  Pattern = "write"
)

// Target is what a workload drives.
type Target interface {
	WriteAt(ctx context.Context, off int64, p []byte) error
	ReadAt(ctx context.Context, off, length int64) ([]byte, error)
}

// Workload describes one run.
type Workload struct {
	Name       string
	Pattern    Pattern
	BlockSize  int64
	QueueDepth int
	// Duration bounds the run; MaxOps, when > 0, bounds it too.
	Duration time.Duration
	MaxOps   int64
}

// Standard returns the standard workloads, each running for d: 4 KiB random write and read at QD 1
// and 16, and 1 MiB sequential write at QD 4.
func Standard(d time.Duration) []Workload {
	return []Workload{
		{Name: "4k-randwrite-qd1", Pattern: RandWrite, BlockSize: 4096, QueueDepth: 1, Duration: d},
		{Name: "4k-randwrite-qd16", Pattern: RandWrite, BlockSize: 4096, QueueDepth: 16, Duration: d},
		{Name: "4k-randread-qd1", Pattern: RandRead, BlockSize: 4096, QueueDepth: 1, Duration: d},
		{Name: "4k-randread-qd16", Pattern: RandRead, BlockSize: 4096, QueueDepth: 16, Duration: d},
		{Name: "1m-write-qd4", Pattern: SeqWrite, BlockSize: 1 << 20, QueueDepth: 4, Duration: d},
	}
}

// Result is what a workload measured.
type Result struct {
	Workload Workload
	Ops      int64
	Bytes    int64
	Elapsed  time.Duration
	P50, P99 time.Duration
}

// IOPS is operations per second.
func (r Result) IOPS() float64 { return float64(r.Ops) / r.Elapsed.Seconds() }

// MBps is bandwidth in MB/s (10^6 bytes).
func (r Result) MBps() float64 { return float64(r.Bytes) / 1e6 / r.Elapsed.Seconds() }

func (w Workload) validate(region int64) error {
	switch {
	case w.Pattern != RandWrite && w.Pattern != RandRead && w.Pattern != SeqWrite:
		return fmt.Errorf("volbench: unknown pattern %q", w.Pattern)
	case w.BlockSize <= 0 || w.QueueDepth <= 0:
		return fmt.Errorf("volbench: %s: block size and queue depth must be positive", w.Name)
	case w.Duration <= 0 && w.MaxOps <= 0:
		return fmt.Errorf("volbench: %s: needs a duration or an op count", w.Name)
	case region < w.BlockSize*int64(w.QueueDepth):
		return fmt.Errorf("volbench: %s: region of %d bytes is smaller than %d blocks of %d", w.Name, region, w.QueueDepth, w.BlockSize)
	}
	return nil
}

// Run runs w over [0, region) of t. seed makes the offsets reproducible.
func Run(ctx context.Context, t Target, region int64, w Workload, seed uint64) (Result, error) {
	if err := w.validate(region); err != nil {
		return Result{}, err
	}
	var (
		mu        sync.Mutex
		latencies []time.Duration
		ops       int64
		firstErr  error
		wg        sync.WaitGroup
	)
	blocks := region / w.BlockSize
	lane := blocks / int64(w.QueueDepth)
	start := time.Now()
	// Requests run with ctx itself, not a deadline, so that the end of the run never cuts a request
	// short: workers stop issuing at end and let their last request finish.
	end := start.Add(w.Duration)
	for worker := range w.QueueDepth {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(worker)))
			buf := make([]byte, w.BlockSize)
			for i := range buf {
				buf[i] = byte(rng.Uint32())
			}
			var local []time.Duration
			for n := int64(0); ; n++ {
				// Every worker issues at least one request, so a short run on a busy machine still measures.
				if ctx.Err() != nil || n > 0 && w.Duration > 0 && time.Now().After(end) {
					break
				}
				mu.Lock()
				if w.MaxOps > 0 && ops >= w.MaxOps {
					mu.Unlock()
					break
				}
				ops++
				mu.Unlock()
				var off int64
				if w.Pattern == SeqWrite {
					off = (int64(worker)*lane + n%lane) * w.BlockSize
				} else {
					off = rng.Int64N(blocks) * w.BlockSize
				}
				t0 := time.Now()
				var err error
				if w.Pattern == RandRead {
					_, err = t.ReadAt(ctx, off, w.BlockSize)
				} else {
					err = t.WriteAt(ctx, off, buf)
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("volbench: %s at %d: %w", w.Pattern, off, err)
					}
					mu.Unlock()
					return
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			latencies = append(latencies, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return Result{}, firstErr
	}
	if len(latencies) == 0 {
		return Result{}, fmt.Errorf("volbench: %s completed no operation", w.Name)
	}
	slices.Sort(latencies)
	pct := func(p float64) time.Duration { return latencies[min(len(latencies)-1, int(p*float64(len(latencies))))] }
	n := int64(len(latencies))
	return Result{Workload: w, Ops: n, Bytes: n * w.BlockSize, Elapsed: elapsed, P50: pct(0.50), P99: pct(0.99)}, nil
}
