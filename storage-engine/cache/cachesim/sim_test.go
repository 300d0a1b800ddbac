package cachesim

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/cobaltstore/cobalt/storage-engine/cache"
)

func TestZipfFrequencies(t *testing.T) {
	const n, draws = 1000, 200000
	z, err := NewZipf(rand.New(rand.NewPCG(1, 1)), n, 0.99)
	if err != nil {
		t.Fatal(err)
	}
	var zetan float64
	for i := 1; i <= n; i++ {
		zetan += 1 / math.Pow(float64(i), 0.99)
	}
	counts := make([]int, n)
	for range draws {
		counts[z.Next()]++
	}
	for _, i := range []int{0, 1, 9, 99} {
		want := draws / math.Pow(float64(i+1), 0.99) / zetan
		if got := float64(counts[i]); math.Abs(got-want) > 0.15*want+30 {
			t.Errorf("value %d drawn %v times, want about %.0f", i, got, want)
		}
	}
	for _, bad := range []float64{0, 1, -1, math.NaN()} {
		if _, err := NewZipf(rand.New(rand.NewPCG(1, 1)), n, bad); err == nil {
			t.Errorf("theta %v accepted", bad)
		}
	}
}

// TestPolicyComparison checks the targets on small caches: 2Q keeps a hot set through
// scans (≥ 1.5× LRU's hit ratio) and is within 5% of LRU on Zipf(0.99).
func TestPolicyComparison(t *testing.T) {
	const size = 2000
	replay := func(p cache.PolicyKind, w Workload) Result {
		r, err := Replay(p, size, 1, w, 5*size, 100*size)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	scan := func() Workload {
		w, err := NewScanHot(rand.New(rand.NewPCG(2, 2)), size, 0.2, 10, 8)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	q, l := replay(cache.Policy2Q, scan()), replay(cache.PolicyLRU, scan())
	t.Logf("scan+hot: 2q %.4f lru %.4f", q.HitRatio(), l.HitRatio())
	if q.HitRatio() < 1.5*l.HitRatio() {
		t.Errorf("scan+hot: 2Q %.4f < 1.5 × LRU %.4f", q.HitRatio(), l.HitRatio())
	}
	zipf := func() Workload {
		w, err := NewZipfKeys(rand.New(rand.NewPCG(3, 3)), 20*size, 0.99)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	q, l = replay(cache.Policy2Q, zipf()), replay(cache.PolicyLRU, zipf())
	t.Logf("zipf: 2q %.4f lru %.4f", q.HitRatio(), l.HitRatio())
	if q.HitRatio() < 0.95*l.HitRatio() {
		t.Errorf("zipf: 2Q %.4f < 0.95 × LRU %.4f", q.HitRatio(), l.HitRatio())
	}
}
