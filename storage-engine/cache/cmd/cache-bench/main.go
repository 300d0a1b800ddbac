// Command cache-bench prints the cache's comparison tables: hit ratios of 2Q and LRU on a
// hot set interleaved with scans and on Zipf(0.99), and Get/Insert throughput with 1 or 8
// shards and 1, 2 or 8 goroutines.
//
//	go run ./storage-engine/cache/cmd/cache-bench [-size 10000] [-ops 50] [-throughput-ops 2000000]
package main

import (
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"time"

	"github.com/cobaltstore/cobalt/storage-engine/cache"
	"github.com/cobaltstore/cobalt/storage-engine/cache/cachesim"
)

func main() {
	size := flag.Int64("size", 10000, "cache size in entries for the hit-ratio runs")
	opsMult := flag.Int("ops", 50, "measured accesses per hit-ratio run, as a multiple of -size")
	tops := flag.Int("throughput-ops", 2000000, "lookups per throughput run")
	flag.Parse()
	if err := run(os.Stdout, *size, *opsMult, *tops); err != nil {
		fmt.Fprintln(os.Stderr, "cache-bench:", err)
		os.Exit(1)
	}
}

func run(w io.Writer, size int64, opsMult, tops int) error {
	if size < 10 || opsMult < 1 || tops < 8 {
		return fmt.Errorf("need -size >= 10, -ops >= 1, -throughput-ops >= 8")
	}
	fmt.Fprintf(w, "Hit ratio (cache %d entries, 1 shard, %d measured accesses after %d warm-up)\n\n", size, int64(opsMult)*size, 5*size)
	fmt.Fprintln(w, "| workload | 2Q | LRU | 2Q / LRU |")
	fmt.Fprintln(w, "|---|---|---|---|")
	workloads := []func() (cachesim.Workload, error){
		func() (cachesim.Workload, error) {
			return cachesim.NewScanHot(rand.New(rand.NewPCG(2, 2)), uint64(size), 0.2, 10, 8)
		},
		func() (cachesim.Workload, error) {
			return cachesim.NewZipfKeys(rand.New(rand.NewPCG(3, 3)), uint64(20*size), 0.99)
		},
	}
	for _, mk := range workloads {
		var res [2]cachesim.Result
		for i, p := range []cache.PolicyKind{cache.Policy2Q, cache.PolicyLRU} {
			wl, err := mk()
			if err != nil {
				return err
			}
			if res[i], err = cachesim.Replay(p, size, 1, wl, int(5*size), opsMult*int(size)); err != nil {
				return err
			}
		}
		ratio := res[0].HitRatio() / max(res[1].HitRatio(), 1e-9)
		fmt.Fprintf(w, "| %s | %.4f | %.4f | %.2f× |\n", res[0].Workload, res[0].HitRatio(), res[1].HitRatio(), ratio)
	}

	fmt.Fprintf(w, "\nGet/Insert throughput (Onode cache of 20000 entries, 200000 keys, Zipf 0.99, GOMAXPROCS=%d)\n\n", runtime.GOMAXPROCS(0))
	fmt.Fprintln(w, "| shards | goroutines | Mops/s | ns/op | hit ratio |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	m, err := cachesim.NewMixed(200000, 8)
	if err != nil {
		return err
	}
	for _, shards := range []int{1, 8} {
		for _, g := range []int{1, 2, 8} {
			c, err := cache.NewOnodeCache[int](cache.Options{Shards: shards, Capacity: 20000})
			if err != nil {
				return err
			}
			if _, err := m.Run(c, g, 200000); err != nil {
				return err
			}
			start := time.Now()
			hits, err := m.Run(c, g, tops)
			if err != nil {
				return err
			}
			d := time.Since(start)
			fmt.Fprintf(w, "| %d | %d | %.2f | %.0f | %.3f |\n", shards, g,
				float64(tops)/d.Seconds()/1e6, float64(d.Nanoseconds())/float64(tops), float64(hits)/float64(tops))
		}
	}
	return nil
}
