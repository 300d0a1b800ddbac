package cachesim

import (
	"fmt"

	"github.com/cobaltstore/cobalt/storage-engine/cache"
)

// Result is the outcome of replaying a workload.
type Result struct {
	Policy       cache.PolicyKind
	Workload     string
	Hits, Misses int64
}

// HitRatio is hits / accesses.
func (r Result) HitRatio() float64 {
	if r.Hits+r.Misses == 0 {
		return 0
	}
	return float64(r.Hits) / float64(r.Hits+r.Misses)
}

// Replay runs ops accesses of w through a fresh entry-counted cache of the given policy,
// capacity and shard count: a Get, and an Insert on a miss (a read-through cache). The first
// warmup accesses are not counted.
func Replay(policy cache.PolicyKind, capacity int64, shards int, w Workload, warmup, ops int) (Result, error) {
	c, err := cache.New[uint64, struct{}](cache.Options{Policy: policy, Capacity: capacity, Shards: shards}, nil)
	if err != nil {
		return Result{}, err
	}
	r := Result{Policy: policy, Workload: w.Name()}
	for i := range warmup + ops {
		k := w.Next()
		_, ok := c.Get(k)
		if !ok {
			if _, _, err := c.Insert(k, struct{}{}, 1); err != nil {
				return Result{}, err
			}
		}
		if i < warmup {
			continue
		}
		if ok {
			r.Hits++
		} else {
			r.Misses++
		}
	}
	if err := c.Check(); err != nil {
		return Result{}, fmt.Errorf("cachesim: after replay: %w", err)
	}
	return r, nil
}
