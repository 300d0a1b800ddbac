package cache

import "testing"

func TestRebalance(t *testing.T) {
	base := TuneConfig{Target: 1000, Min: [NumTuned]int64{10, 10, 10}}
	full := func(budget int64) TuneStats { return TuneStats{Present: true, Budget: budget, Usage: budget} }
	withGhosts := func(s TuneStats, hits, window int64) TuneStats {
		s.GhostHits, s.GhostBytes = hits, window
		return s
	}
	withMisses := func(s TuneStats, misses int64) TuneStats {
		s.Misses = misses
		return s
	}
	absent := TuneStats{}
	for _, tc := range []struct {
		name string
		cfg  TuneConfig
		in   TuneInput
		want [NumTuned]int64
	}{
		{"first round splits by ratios", base, TuneInput{Caches: [NumTuned]TuneStats{
			{Present: true}, {Present: true}, {Present: true}}}, [NumTuned]int64{450, 100, 450}},
		{"no gains: budgets stay", base, TuneInput{Caches: [NumTuned]TuneStats{
			full(300), full(300), full(400)}}, [NumTuned]int64{300, 300, 400}},
		{"ghost hits pull a step from the least useful (largest on ties)", base, TuneInput{Caches: [NumTuned]TuneStats{
			full(450), withGhosts(full(100), 50, 100), full(450)}}, [NumTuned]int64{400, 150, 450}},
		{"within hysteresis nothing moves", base, TuneInput{Caches: [NumTuned]TuneStats{
			withGhosts(full(450), 100, 1000), withGhosts(full(100), 105, 1000), withGhosts(full(450), 100, 1000)}},
			[NumTuned]int64{450, 100, 450}},
		{"a donor never goes below its minimum", base, TuneInput{Caches: [NumTuned]TuneStats{
			full(30), withGhosts(full(960), 9, 10), full(10)}}, [NumTuned]int64{10, 980, 10}},
		{"other memory grows: caches shrink in proportion", base, TuneInput{Other: 500, Caches: [NumTuned]TuneStats{
			full(450), full(100), full(450)}}, [NumTuned]int64{225, 50, 225}},
		{"other memory beyond the target: minimums only", base, TuneInput{Other: 5000, Caches: [NumTuned]TuneStats{
			full(450), full(100), full(450)}}, [NumTuned]int64{10, 10, 10}},
		{"absent cache gets nothing, ratios renormalized", base, TuneInput{Caches: [NumTuned]TuneStats{
			{Present: true}, {Present: true}, absent}}, [NumTuned]int64{819, 181, 0}},
		{"a cache below its fill threshold gains nothing", base, TuneInput{Caches: [NumTuned]TuneStats{
			full(450), {Present: true, Budget: 100, Usage: 50, GhostHits: 1000, GhostBytes: 10}, full(450)}},
			[NumTuned]int64{450, 100, 450}},
		{"a full cache without ghosts gains by its misses", base, TuneInput{Caches: [NumTuned]TuneStats{
			full(450), withGhosts(full(100), 1, 100), withMisses(full(450), 100)}}, [NumTuned]int64{400, 100, 500}},
		{"minimums are restored first", base, TuneInput{Caches: [NumTuned]TuneStats{
			full(995), full(3), full(2)}}, [NumTuned]int64{980, 10, 10}},
		{"custom step", TuneConfig{Target: 1000, Min: base.Min, Step: 0.2}, TuneInput{Caches: [NumTuned]TuneStats{
			withGhosts(full(450), 10, 10), full(100), full(450)}}, [NumTuned]int64{650, 100, 250}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Rebalance(tc.cfg, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			var sum int64
			for _, b := range got {
				sum += b
			}
			if avail := max(tc.cfg.Target-tc.in.Other, 30); sum != avail && tc.in.Caches[TunedKV].Present {
				t.Fatalf("budgets sum to %d, want %d", sum, avail)
			}
		})
	}
}

func TestRebalanceRejectsBadConfig(t *testing.T) {
	for _, cfg := range []TuneConfig{
		{Target: 0},
		{Target: 100, Step: 2},
		{Target: 100, Ratios: [NumTuned]float64{-1, 1, 1}},
		{Target: 100, FullFraction: 1.5},
	} {
		if _, err := Rebalance(cfg, TuneInput{}); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
}
