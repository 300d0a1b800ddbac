package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/store"
)

// Config sizes the workloads.
type Config struct {
	// Objects is the number of 4 MiB objects the random workloads spread over.
	Objects int
	// Duration bounds each timed workload.
	Duration time.Duration
	// SeqQD is the queue depth of the 1 MiB sequential workload.
	SeqQD int
	// Seed makes offsets reproducible.
	Seed uint64
}

const (
	objectSize = 4 << 20
	coll       = "bench"
)

func objName(i int) string { return fmt.Sprintf("obj-%06d", i) }

// objNames returns the names of the first n objects, formatted once so that the timed loops do
// not measure fmt.
func objNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = objName(i)
	}
	return names
}

// Prefill creates the collection and Objects fully written 4 MiB objects.
func Prefill(ctx context.Context, s *store.Store, cfg Config) error {
	if err := s.Commit(ctx, store.NewTransaction().CreateCollection(coll)); err != nil {
		return fmt.Errorf("prefill: %w", err)
	}
	buf := prefillChunk()
	for i := range cfg.Objects {
		txn := store.NewTransaction()
		for off := 0; off < objectSize; off += len(buf) {
			txn.Write(coll, objName(i), uint64(off), buf)
		}
		if err := s.Commit(ctx, txn); err != nil {
			return fmt.Errorf("prefill %s: %w", objName(i), err)
		}
	}
	return nil
}

// run runs qd workers calling op until the duration elapses, collecting latencies.
func run(ctx context.Context, name string, qd int, d time.Duration, bytesPerOp int64, seed uint64,
	op func(ctx context.Context, rng *rand.Rand, worker int, n int64) error) (Result, error) {
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	lats := make([]latencies, qd)
	errs := make([]error, qd)
	var counter atomic.Int64
	cpu0 := processCPU()
	start := time.Now()
	for w := range qd {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for time.Now().Before(deadline) {
				n := counter.Add(1) - 1
				t := time.Now()
				if err := op(ctx, rng, w, n); err != nil {
					if !errors.Is(err, errStop) {
						errs[w] = err
					}
					return
				}
				lats[w] = append(lats[w], time.Since(t))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := processCPU() - cpu0
	var all latencies
	for w := range qd {
		if errs[w] != nil {
			return Result{}, fmt.Errorf("%s: %w", name, errs[w])
		}
		all = append(all, lats[w]...)
	}
	r := Result{Name: name, Ops: int64(len(all)), Bytes: int64(len(all)) * bytesPerOp, Elapsed: elapsed, CPU: cpu}
	r.P50, r.P99 = all.percentiles()
	return r, nil
}

// RandWrite overwrites random 4 KiB blocks of the prefilled objects at queue depth qd.
func RandWrite(ctx context.Context, s *store.Store, cfg Config, qd int) (Result, error) {
	block := make([]byte, 4096)
	for i := range block {
		block[i] = byte(i)
	}
	names := objNames(cfg.Objects)
	return run(ctx, fmt.Sprintf("randwrite-4k-qd%d", qd), qd, cfg.Duration, 4096, cfg.Seed,
		func(ctx context.Context, rng *rand.Rand, _ int, _ int64) error {
			o := rng.IntN(cfg.Objects)
			off := uint64(rng.IntN(objectSize/4096)) * 4096
			return s.Commit(ctx, store.NewTransaction().Write(coll, names[o], off, block))
		})
}

// RandRead reads random 4 KiB blocks of the prefilled objects at queue depth qd. Each reader
// reads into its own aligned buffer (Store.ReadInto), as fio's jobs and the node daemon's block
// frontend do, so the figure is the store's, not the garbage collector's.
func RandRead(ctx context.Context, s *store.Store, cfg Config, qd int) (Result, error) {
	names := objNames(cfg.Objects)
	bufs := make([][]byte, qd)
	for w := range bufs {
		bufs[w] = blockdev.AlignedBuffer(4096)
	}
	return run(ctx, fmt.Sprintf("randread-4k-qd%d", qd), qd, cfg.Duration, 4096, cfg.Seed+1,
		func(ctx context.Context, rng *rand.Rand, w int, _ int64) error {
			o := rng.IntN(cfg.Objects)
			off := uint64(rng.IntN(objectSize/4096)) * 4096
			n, err := s.ReadInto(ctx, coll, names[o], off, bufs[w])
			if err == nil && n != 4096 {
				err = fmt.Errorf("short read of %d bytes", n)
			}
			return err
		})
}

// SeqWrite writes new 4 MiB objects in 1 MiB writes, each one durable, at queue depth cfg.SeqQD
// (each worker writes its own objects in order). It stops early, without error, when the device
// is nearly full.
func SeqWrite(ctx context.Context, s *store.Store, cfg Config) (Result, error) {
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 13)
	}
	limit := s.Statfs().Available / 2
	var written atomic.Uint64
	qd := max(cfg.SeqQD, 1)
	next := make([]int64, qd)
	return run(ctx, fmt.Sprintf("seqwrite-1m-qd%d", qd), qd, cfg.Duration, 1<<20, cfg.Seed+2,
		func(ctx context.Context, _ *rand.Rand, w int, _ int64) error {
			if written.Add(1<<20) > limit {
				return errStop
			}
			i := next[w]
			next[w]++
			name := fmt.Sprintf("seq-%02d-%06d", w, i/4)
			return s.Commit(ctx, store.NewTransaction().Write(coll, name, uint64(i%4)<<20, buf))
		})
}

// CreateSmall creates objects of 4 KiB with 2 xattrs and 4 omap keys, at queue depth qd.
func CreateSmall(ctx context.Context, s *store.Store, cfg Config, qd int) (Result, error) {
	data := make([]byte, 4096)
	return run(ctx, fmt.Sprintf("create-small-qd%d", qd), qd, cfg.Duration, 4096, cfg.Seed+3,
		func(ctx context.Context, _ *rand.Rand, _ int, n int64) error {
			name := fmt.Sprintf("small-%08d", n)
			txn := store.NewTransaction().Write(coll, name, 0, data).
				SetAttr(coll, name, "user.owner", []byte("bench")).SetAttr(coll, name, "user.seq", []byte(name)).
				OmapSet(coll, name, map[string][]byte{"a": []byte("1"), "b": []byte("2"), "c": []byte("3"), "d": []byte("4")})
			return s.Commit(ctx, txn)
		})
}

// errStop ends a worker early without failing the workload.
var errStop = errors.New("bench: stop")
