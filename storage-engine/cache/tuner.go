package cache

import (
	"context"
	"fmt"
	"runtime/metrics"
	"sync"
	"time"
)

// TuneCounters are what a tuned cache reports: cumulative counters and current sizes.
type TuneCounters struct {
	// Hits, Misses and GhostHits are cumulative.
	Hits, Misses, GhostHits int64
	// Usage is the memory in use now; GhostBytes the memory the ghost window stands for.
	Usage, GhostBytes int64
}

// Tunable is a cache whose memory budget the Tuner sets: Cache, BufferCache and
// PebbleBlockCache implement it.
type Tunable interface {
	SetBudget(bytes int64)
	TuneCounters() TuneCounters
}

// TuneCounters reports the cache's counters; the ghost window of an entry-counted cache is
// converted to bytes with the mean entry size.
func (c *Cache[K, V]) TuneCounters() TuneCounters {
	t := c.Metrics().Total
	ghostBytes := t.GhostCharge
	if c.opts.Unit == UnitEntries {
		per := c.opts.EntryBytesHint
		if t.Entries > 0 {
			per = t.Bytes / t.Entries
		}
		ghostBytes *= per
	}
	return TuneCounters{Hits: t.Hits, Misses: t.Misses, GhostHits: t.GhostHits, Usage: t.Bytes, GhostBytes: ghostBytes}
}

// TuneCounters reports the buffer cache's counters.
func (c *BufferCache) TuneCounters() TuneCounters {
	t := c.Metrics().Total
	return TuneCounters{Hits: t.Hits, Misses: t.Misses, GhostHits: t.GhostHits, Usage: t.Bytes, GhostBytes: t.GhostCharge}
}

// TunerOptions configure a Tuner.
type TunerOptions struct {
	// Config is the autotuner's configuration; Config.Target is required.
	Config TuneConfig
	// Interval is the time between rounds (default 5s).
	Interval time.Duration
	// MeasureHeap estimates the memory outside the caches from the Go runtime's live heap
	// (as of the last GC) instead of only the Mempool's CategoryOther.
	MeasureHeap bool
}

// TunerReport is the outcome of one round.
type TunerReport struct {
	// Budgets are the budgets set, by Tuned cache.
	Budgets [NumTuned]int64
	// Gains are the caches' estimated marginal gains (hits per extra byte) over the round.
	Gains [NumTuned]float64
	// Other is the memory counted outside the caches.
	Other int64
	// Usage is the Mempool snapshot the round saw.
	Usage [NumCategories]int64
}

// Tuner periodically splits a memory target among the Onode cache, the buffer cache and the
// KV block cache (Rebalance), and sets their budgets, which trims them when over. It also
// copies the KV cache's usage into the Mempool's CategoryKV. Start runs it; Step runs one round.
type Tuner struct {
	pool   *Mempool
	caches [NumTuned]Tunable
	opts   TunerOptions

	mu struct {
		sync.Mutex
		prev    [NumTuned]TuneCounters
		budgets [NumTuned]int64
		last    TunerReport
	}
}

// NewTuner returns a tuner for the given caches (nil entries are absent caches).
func NewTuner(pool *Mempool, caches [NumTuned]Tunable, opts TunerOptions) (*Tuner, error) {
	if pool == nil {
		return nil, fmt.Errorf("cache: tuner needs a mempool")
	}
	opts.Config = opts.Config.withDefaults()
	if err := opts.Config.validate(); err != nil {
		return nil, err
	}
	if opts.Interval == 0 {
		opts.Interval = 5 * time.Second
	}
	if opts.Interval < 0 {
		return nil, fmt.Errorf("cache: negative tuner interval %v", opts.Interval)
	}
	t := &Tuner{pool: pool, caches: caches, opts: opts}
	for i, c := range caches {
		if c != nil {
			t.mu.prev[i] = c.TuneCounters()
		}
	}
	return t, nil
}

// Step runs one round: gather the caches' counters since the last round, decide the budgets
// and apply them.
func (t *Tuner) Step() (TunerReport, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var in TuneInput
	var cur [NumTuned]TuneCounters
	for i, c := range t.caches {
		if c == nil {
			continue
		}
		cur[i] = c.TuneCounters()
		p := t.mu.prev[i]
		in.Caches[i] = TuneStats{
			Present: true, Budget: t.mu.budgets[i], Usage: cur[i].Usage,
			Hits: cur[i].Hits - p.Hits, Misses: cur[i].Misses - p.Misses, GhostHits: cur[i].GhostHits - p.GhostHits,
			GhostBytes: cur[i].GhostBytes,
		}
	}
	if t.caches[TunedKV] != nil {
		t.pool.bytes[CategoryKV].Store(cur[TunedKV].Usage)
	}
	usage := t.pool.Snapshot()
	in.Other = usage[CategoryOther]
	if t.opts.MeasureHeap {
		onHeap := usage[CategoryOnodes] + usage[CategoryBuffers]
		if kvCacheOnGoHeap {
			onHeap += usage[CategoryKV]
		}
		in.Other = max(in.Other, liveHeap()-onHeap)
	}
	budgets, err := Rebalance(t.opts.Config, in)
	if err != nil {
		return TunerReport{}, err
	}
	rep := TunerReport{Budgets: budgets, Other: in.Other, Usage: usage}
	for i, c := range t.caches {
		if c == nil {
			continue
		}
		rep.Gains[i] = t.opts.Config.Gain(in.Caches[i])
		c.SetBudget(budgets[i])
	}
	t.mu.prev = cur
	t.mu.budgets = budgets
	t.mu.last = rep
	return rep, nil
}

// Last returns the report of the latest round.
func (t *Tuner) Last() TunerReport {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mu.last
}

// Start runs a round at once and then every Interval until ctx is done (a controller-runtime
// style Runnable). It returns nil when ctx ends, or the first error of a round.
func (t *Tuner) Start(ctx context.Context) error {
	if _, err := t.Step(); err != nil {
		return fmt.Errorf("cache: tuner: %w", err)
	}
	tick := time.NewTicker(t.opts.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if _, err := t.Step(); err != nil {
				return fmt.Errorf("cache: tuner: %w", err)
			}
		}
	}
}

// liveHeap is the Go heap that was live at the end of the last GC.
func liveHeap() int64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int64(s[0].Value.Uint64())
}
