package replica_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cobaltstore/cobalt/node-daemon/replica"
)

// BenchmarkRebuild measures a rebuild of a fully written volume from node-a (the coordinator's
// local replica) onto node-c over mTLS on loopback, each node on its own file-backed engine
// store, unthrottled. It reports MB/s of the whole rebuild (copy and comparison) and of the copy
// alone, beside two baselines on the same file system: seq-MB/s, 1 MiB sequential writes straight
// to node-c's volume manager (no network, no coordinator), and file-MB/s, 1 MiB sequential
// writes to a plain file followed by fsync (the device's sequential bandwidth as the stores see
// it). ratio is copy MB/s over file MB/s, seq-ratio copy MB/s over seq MB/s.
func BenchmarkRebuild(b *testing.B) {
	const size = 256 << 20
	const id = "bench-rebuild"
	ctx := context.Background()
	c := newCluster(b, 3, 2<<30)
	a, nb, cn := c.nodes[0], c.nodes[1], c.nodes[2]
	for _, n := range []*node{a, nb} {
		if _, err := n.vols.Create(ctx, id, size, 0); err != nil {
			b.Fatal(err)
		}
	}
	co, err := c.coordinate(b, id, 1, &recorder{}, a, nb)
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	for off := int64(0); off < size; off += 1 << 20 {
		data[0] = byte(off >> 20)
		if err := co.Write(ctx, off, data); err != nil {
			b.Fatal(err)
		}
	}

	// Baselines, measured once.
	start := time.Now()
	if _, err := cn.vols.Create(ctx, "seq", size, 0); err != nil {
		b.Fatal(err)
	}
	for off := int64(0); off < size; off += 1 << 20 {
		if err := cn.vols.Write(ctx, "seq", off, data); err != nil {
			b.Fatal(err)
		}
	}
	seqMBps := float64(size) / 1e6 / time.Since(start).Seconds()
	if err := cn.vols.Delete(ctx, "seq"); err != nil {
		b.Fatal(err)
	}
	fileMBps := fileWriteMBps(b, size, data)

	var copySecs, totalSecs float64
	var copied int64
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		if i > 0 {
			if err := cn.vols.Delete(ctx, id); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := cn.vols.Create(ctx, id, size, 0); err != nil {
			b.Fatal(err)
		}
		// Each round is a new attachment generation with node-c out of the in-sync set.
		round, err := c.coordinate(b, id, uint64(i+2), &recorder{}, a, nb)
		if err != nil {
			b.Fatal(err)
		}
		target := c.remote(b, cn, id)
		var once sync.Once
		var copyEnd time.Time
		opts := replica.SyncOptions{Progress: func(p replica.Progress) {
			if p.Phase != replica.PhaseCopy {
				once.Do(func() { copyEnd = time.Now() })
			}
		}}
		b.StartTimer()
		t0 := time.Now()
		res, err := round.Rebuild(ctx, a.name, target, opts)
		if err != nil {
			b.Fatal(err)
		}
		totalSecs += time.Since(t0).Seconds()
		copySecs += copyEnd.Sub(t0).Seconds()
		copied += res.Copied
	}
	b.StopTimer()
	b.SetBytes(size)
	copyMBps := float64(copied) / 1e6 / copySecs
	b.ReportMetric(float64(copied)/1e6/totalSecs, "MB/s")
	b.ReportMetric(copyMBps, "copy-MB/s")
	b.ReportMetric(seqMBps, "seq-MB/s")
	b.ReportMetric(fileMBps, "file-MB/s")
	b.ReportMetric(copyMBps/fileMBps, "ratio")
	b.ReportMetric(copyMBps/seqMBps, "seq-ratio")
}

// fileWriteMBps writes size bytes sequentially to a plain file in 1 MiB writes, fsyncs it and
// returns the rate in MB/s.
func fileWriteMBps(b *testing.B, size int64, data []byte) float64 {
	b.Helper()
	f, err := os.Create(filepath.Join(b.TempDir(), "seq.img"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	start := time.Now()
	for off := int64(0); off < size; off += int64(len(data)) {
		if _, err := f.Write(data); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		b.Fatal(fmt.Errorf("fsync: %w", err))
	}
	return float64(size) / 1e6 / time.Since(start).Seconds()
}
