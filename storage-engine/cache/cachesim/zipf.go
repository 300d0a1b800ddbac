package cachesim

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Zipf draws integers in [0, n) with P(i) ∝ 1/(i+1)^theta, for any theta > 0 except 1
// (math/rand's Zipf needs theta > 1; caching studies use 0.99). It uses the method of Gray et
// al., "Quickly Generating Billion-Record Synthetic Databases", SIGMOD 1994, as YCSB does.
type Zipf struct {
	rng                      *rand.Rand
	n                        uint64
	theta, alpha, zetan, eta float64
	half                     float64
}

// NewZipf returns a generator; building it costs O(n) (the zeta sum).
func NewZipf(rng *rand.Rand, n uint64, theta float64) (*Zipf, error) {
	if n < 2 || theta <= 0 || theta == 1 || math.IsNaN(theta) {
		return nil, fmt.Errorf("cachesim: zipf needs n >= 2 and theta > 0, theta != 1 (got n=%d theta=%v)", n, theta)
	}
	var zetan float64
	for i := uint64(1); i <= n; i++ {
		zetan += 1 / math.Pow(float64(i), theta)
	}
	zeta2 := 1 + 1/math.Pow(2, theta)
	return &Zipf{
		rng: rng, n: n, theta: theta,
		alpha: 1 / (1 - theta),
		zetan: zetan,
		eta:   (1 - math.Pow(2/float64(n), 1-theta)) / (1 - zeta2/zetan),
		half:  math.Pow(0.5, theta),
	}, nil
}

// Next returns the next value; 0 is the most frequent.
func (z *Zipf) Next() uint64 {
	u := z.rng.Float64()
	uz := u * z.zetan
	if uz < 1 {
		return 0
	}
	if uz < 1+z.half {
		return 1
	}
	v := uint64(float64(z.n) * math.Pow(z.eta*u-z.eta+1, z.alpha))
	return min(v, z.n-1)
}
