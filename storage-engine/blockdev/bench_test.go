package blockdev_test

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cobaltstore/cobalt/storage-engine/bench/fio"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
)

// benchRegion is the part of the device the benchmarks use.
const benchRegion = 1 << 30

// BenchmarkDeviceVsFio measures FileDevice on the standard workloads (4 KiB random writes and reads
// at queue depth 1 and 16, 1 MiB sequential writes; no flushes, like fio without fsync) and, when
// fio is installed, runs fio's job on the same target and reports fio's IOPS and the ratio. The
// target is a loop device with direct I/O when running as root, else a file in the test's temp
// directory. `make io-bench` runs it.
func BenchmarkDeviceVsFio(b *testing.B) {
	target := benchTarget(b)
	fioPath, _ := exec.LookPath("fio")
	prefill(b, target) // reads must hit written blocks, not holes of a sparse file
	for _, job := range fio.StandardJobs(benchRegion, 3*time.Second) {
		var raw *fio.Result // fio runs once per workload, however often b.N grows
		b.Run(job.Name, func(b *testing.B) {
			d, err := blockdev.Open(target, blockdev.Options{QueueDepth: job.QueueDepth})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			b.SetBytes(int64(job.BlockSize))
			start := time.Now()
			runWorkload(b, d, job)
			elapsed := time.Since(start)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "IOPS")
			if fioPath == "" {
				return
			}
			if raw == nil {
				b.StopTimer()
				r, err := fio.Run(context.Background(), fioPath, target, job)
				if err != nil {
					b.Fatal(err)
				}
				raw = &r
				b.StartTimer()
			}
			b.ReportMetric(raw.IOPS, "fio-IOPS")
			b.ReportMetric(float64(b.N)/elapsed.Seconds()/raw.IOPS, "ratio")
		})
	}
}

// runWorkload does b.N I/Os of job on d from job.QueueDepth goroutines.
func runWorkload(b *testing.B, d blockdev.Device, job fio.Job) {
	var next atomic.Int64
	var wg sync.WaitGroup
	blocks := job.Size / int64(job.BlockSize)
	for w := range job.QueueDepth {
		wg.Go(func() {
			buf := blockdev.AlignedBuffer(job.BlockSize)
			for i := range buf {
				buf[i] = byte(i * 7)
			}
			rng := rand.New(rand.NewPCG(uint64(w), 5))
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				off := (i % blocks) * int64(job.BlockSize) // sequential
				if job.RW == "randwrite" || job.RW == "randread" {
					off = rng.Int64N(blocks) * int64(job.BlockSize)
				}
				var err error
				if job.RW == "randread" || job.RW == "read" {
					_, err = d.ReadAt(buf, off)
				} else {
					_, err = d.WriteAt(buf, off)
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func benchTarget(b *testing.B) string {
	if os.Geteuid() == 0 {
		if _, err := exec.LookPath("losetup"); err == nil {
			return loopForBench(b)
		}
	}
	p := filepath.Join(b.TempDir(), "bench.img")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.Truncate(p, benchRegion); err != nil {
		b.Fatal(err)
	}
	return p
}

func loopForBench(b *testing.B) string {
	p := filepath.Join(b.TempDir(), "loop.img")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.Truncate(p, benchRegion); err != nil {
		b.Fatal(err)
	}
	out, err := exec.Command("losetup", "-f", "--show", "--direct-io=on", p).Output()
	if err != nil {
		b.Fatalf("losetup: %v", err)
	}
	dev := string(out[:len(out)-1])
	b.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			b.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	return dev
}

// prefill writes the whole benchmark region once, with 1 MiB writes.
func prefill(b *testing.B, target string) {
	d, err := blockdev.Open(target, blockdev.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	buf := blockdev.AlignedBuffer(1 << 20)
	for i := range buf {
		buf[i] = byte(i)
	}
	for off := int64(0); off < benchRegion; off += int64(len(buf)) {
		if _, err := d.WriteAt(buf, off); err != nil {
			b.Fatal(err)
		}
	}
	if err := d.Flush(); err != nil {
		b.Fatal(err)
	}
}
