package cache

import "fmt"

// Tuned names a cache whose share of the memory target the autotuner sets.
type Tuned int

const (
	// TunedOnodes is the Onode cache.
	TunedOnodes Tuned = iota
	// TunedBuffers is the data buffer cache.
	TunedBuffers
	// TunedKV is the KV store's (pebble's) block cache.
	TunedKV
	// NumTuned is the number of tuned caches.
	NumTuned
)

func (t Tuned) String() string {
	switch t {
	case TunedOnodes:
		return "onodes"
	case TunedBuffers:
		return "buffers"
	case TunedKV:
		return "kv"
	}
	return fmt.Sprintf("tuned(%d)", int(t))
}

// TuneConfig configures Rebalance. Zero fields take the defaults of DefaultTuneConfig.
type TuneConfig struct {
	// Target is the memory target in bytes for the caches plus everything else (Other).
	Target int64
	// Ratios split the caches' memory at the start (normalized over present caches). The
	// defaults follow BlueStore's cache_meta_ratio and cache_kv_ratio (0.45 each), data 0.1.
	Ratios [NumTuned]float64
	// Min is the smallest budget of each cache.
	Min [NumTuned]int64
	// Step is the share of the caches' memory moved per round (default 0.05).
	Step float64
	// Hysteresis: memory moves only when the receiver's gain exceeds the donor's by this
	// factor (default 0.1), so that noise does not shuffle memory back and forth.
	Hysteresis float64
	// MissGain estimates the marginal gain of a full cache that keeps no ghosts (LRU, pebble):
	// MissGain × misses / budget hits per extra byte (default 0.25).
	MissGain float64
	// FullFraction: a cache using less than this share of its budget gains nothing from more
	// (default 0.9).
	FullFraction float64
}

// DefaultTuneConfig returns the defaults for a target.
func DefaultTuneConfig(target int64) TuneConfig {
	return TuneConfig{
		Target:       target,
		Ratios:       [NumTuned]float64{TunedOnodes: 0.45, TunedBuffers: 0.10, TunedKV: 0.45},
		Min:          [NumTuned]int64{TunedOnodes: 1 << 20, TunedBuffers: 1 << 20, TunedKV: 4 << 20},
		Step:         0.05,
		Hysteresis:   0.1,
		MissGain:     0.25,
		FullFraction: 0.9,
	}
}

func (c TuneConfig) withDefaults() TuneConfig {
	d := DefaultTuneConfig(c.Target)
	if c.Ratios == ([NumTuned]float64{}) {
		c.Ratios = d.Ratios
	}
	if c.Min == ([NumTuned]int64{}) {
		c.Min = d.Min
	}
	if c.Step == 0 {
		c.Step = d.Step
	}
	if c.Hysteresis == 0 {
		c.Hysteresis = d.Hysteresis
	}
	if c.MissGain == 0 {
		c.MissGain = d.MissGain
	}
	if c.FullFraction == 0 {
		c.FullFraction = d.FullFraction
	}
	return c
}

func (c TuneConfig) validate() error {
	if c.Target <= 0 {
		return fmt.Errorf("cache: memory target %d must be positive", c.Target)
	}
	for i, r := range c.Ratios {
		if r < 0 || c.Min[i] < 0 {
			return fmt.Errorf("cache: negative ratio or minimum for %s", Tuned(i))
		}
	}
	if c.Step <= 0 || c.Step > 1 || c.Hysteresis < 0 || c.MissGain < 0 || c.FullFraction <= 0 || c.FullFraction > 1 {
		return fmt.Errorf("cache: tune config out of range (step %v, hysteresis %v, miss gain %v, full %v)",
			c.Step, c.Hysteresis, c.MissGain, c.FullFraction)
	}
	return nil
}

// TuneStats describes one cache over the last tuning period.
type TuneStats struct {
	// Present is false for a cache the embedder does not have (it gets no memory).
	Present bool
	// Budget is the cache's current budget in bytes (0 before the first round).
	Budget int64
	// Usage is the memory the cache uses now.
	Usage int64
	// Hits, Misses and GhostHits are counts during the period. Ghost hits are misses on keys
	// still in A1out: a cache bigger by GhostBytes would have hit them.
	Hits, Misses, GhostHits int64
	// GhostBytes is the memory the ghost window stands for (0 for caches without ghosts).
	GhostBytes int64
}

// TuneInput is what Rebalance decides from.
type TuneInput struct {
	// Other is the memory used outside the tuned caches.
	Other  int64
	Caches [NumTuned]TuneStats
}

// Gain estimates the hits per extra byte of budget a cache would earn (its marginal utility):
// ghost hits over the ghost window when it keeps ghosts, else MissGain × misses / budget; zero
// when the cache does not even fill its current budget.
func (c TuneConfig) Gain(s TuneStats) float64 {
	c = c.withDefaults()
	if !s.Present || s.Budget <= 0 || float64(s.Usage) < c.FullFraction*float64(s.Budget) {
		return 0
	}
	if s.GhostBytes > 0 {
		return float64(s.GhostHits) / float64(s.GhostBytes)
	}
	return c.MissGain * float64(s.Misses) / float64(s.Budget)
}

// Rebalance is the autotuner's decision, a pure function: it returns each cache's new budget.
// The caches share Target − Other (never less than the sum of the minimums). Their current
// budgets are scaled to that total (the first round splits it by Ratios); then, if the cache
// with the highest Gain beats the lowest by more than Hysteresis, Step of the total moves from
// the lowest to the highest, keeping every cache at or above its minimum. Absent caches get 0.
func Rebalance(cfg TuneConfig, in TuneInput) ([NumTuned]int64, error) {
	var out [NumTuned]int64
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return out, err
	}
	var present []int
	var minSum int64
	for i, s := range in.Caches {
		if s.Present {
			present = append(present, i)
			minSum += cfg.Min[i]
		}
	}
	if len(present) == 0 {
		return out, nil
	}
	avail := max(cfg.Target-max(in.Other, 0), minSum)

	// Start from the current budgets, or the ratios on the first round.
	weights := make([]float64, len(present))
	var wsum float64
	for k, i := range present {
		weights[k] = float64(in.Caches[i].Budget)
		wsum += weights[k]
	}
	if wsum == 0 {
		for k, i := range present {
			weights[k] = cfg.Ratios[i]
			wsum += weights[k]
		}
	}
	if wsum == 0 {
		for k := range weights {
			weights[k] = 1
		}
		wsum = float64(len(weights))
	}
	budgets := distribute(avail, present, weights, wsum, cfg.Min)

	// Move one step from the least to the most useful cache.
	gains := make([]float64, len(present))
	recv, donor := 0, -1
	for k, i := range present {
		gains[k] = cfg.Gain(in.Caches[i])
		if gains[k] > gains[recv] {
			recv = k
		}
	}
	for k, i := range present {
		if k == recv || budgets[k] <= cfg.Min[i] {
			continue
		}
		if donor < 0 || gains[k] < gains[donor] || (gains[k] == gains[donor] && budgets[k] > budgets[donor]) {
			donor = k
		}
	}
	if donor >= 0 && gains[recv] > 0 && gains[recv] > gains[donor]*(1+cfg.Hysteresis) {
		delta := min(int64(cfg.Step*float64(avail)), budgets[donor]-cfg.Min[present[donor]])
		budgets[donor] -= delta
		budgets[recv] += delta
	}
	for k, i := range present {
		out[i] = budgets[k]
	}
	return out, nil
}

// distribute splits total among the present caches in proportion to weights, raises any cache
// below its minimum by taking from those above theirs, and makes the parts sum to total.
func distribute(total int64, present []int, weights []float64, wsum float64, mins [NumTuned]int64) []int64 {
	b := make([]int64, len(present))
	var sum int64
	for k := range present {
		b[k] = int64(float64(total) * weights[k] / wsum)
		sum += b[k]
	}
	b[0] += total - sum // rounding
	for k, i := range present {
		deficit := mins[i] - b[k]
		for j := range b {
			if deficit <= 0 {
				break
			}
			if j == k {
				continue
			}
			take := min(deficit, b[j]-mins[present[j]])
			if take > 0 {
				b[j] -= take
				b[k] += take
				deficit -= take
			}
		}
	}
	return b
}
