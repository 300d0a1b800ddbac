package cachesim

import (
	"fmt"
	"math/rand/v2"
)

// A Workload yields a key per call to Next.
type Workload interface {
	Next() uint64
	// Name describes the workload for reports.
	Name() string
}

// ScanHot is a hot set interleaved with sequential scans: a hot set of HotFraction × cache
// size keys, accessed at random, one hot access after every HotEvery scan accesses; each scan
// reads ScanMultiple × cache size keys in order, never seen before. An LRU cache loses the hot
// set to every scan once a hot key's reuse distance (≈ hot size × HotEvery) exceeds the cache;
// 2Q keeps it in Am while the scan only passes through A1in.
type ScanHot struct {
	rng               *rand.Rand
	hot               uint64
	scanLen, hotEvery uint64
	scanPos, sinceHot uint64
	nextScanKey       uint64
}

// scanBase keeps scan keys apart from hot keys.
const scanBase = 1 << 40

// NewScanHot returns the workload for a cache of cacheSize entries.
func NewScanHot(rng *rand.Rand, cacheSize uint64, hotFraction float64, scanMultiple, hotEvery uint64) (*ScanHot, error) {
	hot := uint64(float64(cacheSize) * hotFraction)
	if cacheSize == 0 || hot == 0 || scanMultiple == 0 || hotEvery == 0 {
		return nil, fmt.Errorf("cachesim: scan-hot needs a positive cache, hot set, scan and interleave (got %d, %v, %d, %d)",
			cacheSize, hotFraction, scanMultiple, hotEvery)
	}
	return &ScanHot{rng: rng, hot: hot, scanLen: scanMultiple * cacheSize, hotEvery: hotEvery,
		nextScanKey: scanBase}, nil
}

// Next returns the next key.
func (w *ScanHot) Next() uint64 {
	if w.sinceHot >= w.hotEvery {
		w.sinceHot = 0
		return w.rng.Uint64N(w.hot)
	}
	w.sinceHot++
	k := w.nextScanKey
	w.nextScanKey++
	w.scanPos++
	if w.scanPos == w.scanLen {
		w.scanPos = 0
	}
	return k
}

// Name describes the workload.
func (w *ScanHot) Name() string {
	return fmt.Sprintf("hot %d + scans %d (1 hot per %d)", w.hot, w.scanLen, w.hotEvery)
}

// ZipfKeys draws keys from a Zipf distribution over n keys.
type ZipfKeys struct {
	z     *Zipf
	n     uint64
	theta float64
}

// NewZipfKeys returns a Zipf workload.
func NewZipfKeys(rng *rand.Rand, n uint64, theta float64) (*ZipfKeys, error) {
	z, err := NewZipf(rng, n, theta)
	if err != nil {
		return nil, err
	}
	return &ZipfKeys{z: z, n: n, theta: theta}, nil
}

// Next returns the next key.
func (w *ZipfKeys) Next() uint64 { return w.z.Next() }

// Name describes the workload.
func (w *ZipfKeys) Name() string { return fmt.Sprintf("zipf(%.2f) over %d keys", w.theta, w.n) }
