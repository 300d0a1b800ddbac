// Command cobalt-bench runs the storage engine's standard workloads on a device or file, next to
// fio on the same device, and prints IOPS, MB/s and latency percentiles. The device is overwritten.
//
//	cobalt-bench -device /dev/loop0 -duration 10s -fio   # metadata on the device, as the node daemon makes stores
//	cobalt-bench -device /dev/loop0 -metadata dir -db /tmp/bench-db -duration 10s -fio   # metadata in a host directory
//	cobalt-bench -loop-size 4G -fio -metadata device,dir   # both layouts after one run of the baselines, one table each
//	cobalt-bench -loop-size 4G -meta-loop-size 1G -fio -metadata device,metadev   # metadata on the device, then on a second loop device
//	cobalt-bench -loop-size 4G -fio   # (root) a new file, every block written first, on a fresh loop device, detached at exit
//	cobalt-bench -loop-size 4G -loop-sparse -fio   # the same on a sparse file (first writes pay the host's block allocation)
//	cobalt-bench -loop-size 4G -fio -workloads randwrite-4k-qd16 -cpuprofile /tmp/p   # one workload, profiled
//	cobalt-bench -loop-size 4G -fio -cpuprofile /tmp/cpu -blockprofile /tmp/block   # CPU and blocking, per workload
//	cobalt-bench -loop-size 4G -fio -workloads randread -rounds 5   # fio, go-dev and the store's reads side by side five times: medians
//	cobalt-bench -loop-size 4G -fio -workloads randread -trace /tmp/tr   # execution trace per workload: go tool trace /tmp/tr.randread-4k-qd16.trace
//
// With -fio it also runs the durable floor for the 4 KiB random overwrites (fio psync, fdatasync
// after every write, 1 and 16 processes) and prints a second table of the store beside it. The
// first line of each table says where the store's metadata lives.
//
// The files behind -loop-size and -meta-loop-size have every block written before the loop device
// is attached, as every block of a real device exists: a first write into a hole of a sparse file
// makes the host file system allocate and journal blocks at the next flush. That cost fell on
// the store's writes to newly allocated space and hardly on fio, which rewrites one region: in
// three interleaved runs (load 7-11) the store's 1 MiB sequential writes made 62-65% of raw fio's
// on a sparse file and 93-133% on a written one; the 4 KiB overwrites, which rewrite allocated
// blocks, did not change beyond the noise. -loop-sparse keeps the files sparse, as before.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cobaltstore/cobalt/storage-engine/bench"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/cache"
	"github.com/cobaltstore/cobalt/storage-engine/store"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "cobalt-bench:", err)
		os.Exit(1)
	}
}

func run() error {
	device := flag.String("device", "", "block device or file to benchmark (overwritten)")
	var createSize, loopSize sizeFlag
	flag.Var(&createSize, "create-size", "create -device as a sparse file of this size (e.g. 4G) if it does not exist")
	metadata := flag.String("metadata", string(bench.MetadataOnDevice), "where the store keeps its metadata: device (a region of the device, as the node daemon makes stores), "+
		"dir (a host directory, -db), metadev (a separate metadata device, -meta-device or -meta-loop-size), or several comma-separated (one table each, after one run of the baselines)")
	metaDevice := flag.String("meta-device", "", "separate metadata device for -metadata metadev (overwritten)")
	var metaLoopSize sizeFlag
	flag.Var(&metaLoopSize, "meta-loop-size", "instead of -meta-device, attach a file of this size (e.g. 1G), every block written first, to a second loop device (root)")
	db := flag.String("db", "", "metadata directory for -metadata dir (emptied; default: a temporary directory)")
	flag.Var(&loopSize, "loop-size", "instead of -device, attach a file of this size (e.g. 4G), every block written first, to a loop device (root)")
	loopSparse := flag.Bool("loop-sparse", false, "leave the files of -loop-size and -meta-loop-size sparse (first writes then pay the host file system's block allocation)")
	duration := flag.Duration("duration", 10*time.Second, "duration of each workload")
	objects := flag.Int("objects", 64, "number of 4 MiB objects for the random workloads")
	seqQD := flag.Int("seq-qd", 16, "queue depth of the 1 MiB sequential workload")
	withFio := flag.Bool("fio", false, "run fio on the raw device first (raw jobs and the durable floors) and print it alongside")
	deferred := flag.Int("prefer-deferred", 0, "store PreferDeferredSize (0 default, -1 off)")
	deferredBatch := flag.Int("deferred-batch", 0, "store DeferredBatch (0 default)")
	deferredInterval := flag.Duration("deferred-interval", 0, "store DeferredInterval (0 default)")
	var prof profiler
	flag.StringVar(&prof.cpu, "cpuprofile", "", "write a CPU profile of each store workload to <this>.<workload>.prof")
	flag.StringVar(&prof.block, "blockprofile", "", "write the block profile after each store workload to <this>.<workload>.prof "+
		"(recorded during store workloads only, cumulative: pprof -diff_base the previous workload's)")
	flag.StringVar(&prof.trace, "trace", "", "write an execution trace of each store workload to <this>.<workload>.trace (go tool trace)")
	flag.StringVar(&prof.mutex, "mutexprofile", "", "write the mutex profile after each store workload to <this>.<workload>.prof (as -blockprofile)")
	rounds := flag.Int("rounds", 1, "run the 4 KiB random reads this many times, alternating fio, go-dev and the store, and report the medians")
	workloads := flag.String("workloads", "", "comma-separated workload name prefixes to run (default: all), e.g. randwrite-4k-qd16,seqwrite")
	flag.Parse()
	layouts, err := bench.ParseLayouts(*metadata)
	if err != nil {
		return err
	}
	// Run as the node daemon should: with enough Ps for blocking device I/O (see
	// blockdev.MinIOProcs); an explicit GOMAXPROCS in the environment wins.
	procs := runtime.GOMAXPROCS(0)
	if os.Getenv("GOMAXPROCS") == "" {
		procs = blockdev.RaiseGOMAXPROCS()
	}
	// And with the node daemon's collector settings for the store's memory target
	// (node-daemon/engine.GCBudget); GOGC or GOMEMLIMIT in the environment win.
	collector := "GOGC and GOMEMLIMIT from the environment"
	if !cache.GCSetByEnv(os.Getenv) {
		target, err := store.DefaultMemoryTarget()
		if err != nil {
			return err
		}
		gc := cache.GCSettingsFor(target, cache.CgroupLimit(os.DirFS("/")))
		cache.ApplyGCSettings(gc)
		collector = fmt.Sprintf("GOGC %d, memory limit %d MiB (the store's memory target, as the node daemon sets it)", gc.Percent, gc.Limit>>20)
	}
	fmt.Fprintf(os.Stderr, "cobalt-bench: GOMAXPROCS %d on %d CPUs\n", procs, runtime.NumCPU())
	fmt.Printf("go collector: %s\n", collector)
	tmp, err := os.MkdirTemp("", "cobalt-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if *db == "" {
		*db = filepath.Join(tmp, "db")
	}
	if int64(loopSize) > 0 {
		dev, detach, err := attachLoop(filepath.Join(tmp, "loop.img"), int64(loopSize), !*loopSparse)
		if err != nil {
			return err
		}
		defer detach()
		*device = dev
	}
	if int64(metaLoopSize) > 0 {
		dev, detach, err := attachLoop(filepath.Join(tmp, "meta.img"), int64(metaLoopSize), !*loopSparse)
		if err != nil {
			return err
		}
		defer detach()
		*metaDevice = dev
	}
	if *device == "" {
		flag.Usage()
		return fmt.Errorf("-device or -loop-size is required")
	}
	if int64(createSize) > 0 {
		if _, err := os.Stat(*device); os.IsNotExist(err) {
			d, err := blockdev.Open(*device, blockdev.Options{CreateSize: int64(createSize)})
			if err != nil {
				return err
			}
			if err := d.Close(); err != nil {
				return err
			}
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := bench.SuiteOptions{
		Config:     bench.Config{Objects: *objects, Duration: *duration, SeqQD: *seqQD, Seed: 1},
		DevicePath: *device, Layouts: layouts, DBDir: *db, MetaDevicePath: *metaDevice, Fio: *withFio, Log: os.Stderr, Rounds: *rounds,
	}
	opts.Store.PreferDeferredSize = *deferred
	opts.Store.DeferredBatch = *deferredBatch
	opts.Store.DeferredInterval = *deferredInterval
	if *workloads != "" {
		opts.Workloads = strings.Split(*workloads, ",")
	}
	var profErr error
	if prof.enabled() {
		opts.Around = func(name string, run func()) {
			if err := prof.around(name, run); err != nil && profErr == nil {
				profErr = err
			}
		}
	}
	reps, err := bench.RunSuite(ctx, opts)
	if err == nil {
		err = profErr
	}
	for i, rep := range reps {
		if len(rep.Rows) == 0 {
			continue
		}
		if i > 0 {
			fmt.Println()
		}
		if perr := bench.Print(os.Stdout, rep); perr != nil && err == nil {
			err = perr
		}
	}
	return err
}

// attachLoop creates a file of size bytes, with every block written when allocate is set (else
// sparse), and attaches it to a free loop device with direct I/O; detach undoes it.
func attachLoop(path string, size int64, allocate bool) (dev string, detach func(), err error) {
	t := time.Now()
	f, err := blockdev.Open(path, blockdev.Options{CreateSize: size, CreateAllocated: allocate})
	if err != nil {
		return "", nil, err
	}
	if err := f.Close(); err != nil {
		return "", nil, err
	}
	if allocate {
		fmt.Printf("loop file %s: %d MiB, every block written in %v\n", path, size>>20, time.Since(t).Round(time.Millisecond))
	} else {
		fmt.Printf("loop file %s: %d MiB, sparse\n", path, size>>20)
	}
	out, err := exec.Command("losetup", "-f", "--show", "--direct-io=on", path).CombinedOutput()
	if err != nil {
		return "", nil, fmt.Errorf("losetup: %w: %s", err, out)
	}
	dev = strings.TrimSpace(string(out))
	return dev, func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "cobalt-bench: losetup -d %s: %v: %s\n", dev, err, out)
		}
	}, nil
}

// sizeFlag is a byte count with an optional K, M, G or T suffix (powers of 1024).
type sizeFlag int64

func (f *sizeFlag) String() string { return strconv.FormatInt(int64(*f), 10) }

func (f *sizeFlag) Set(v string) error {
	mult := int64(1)
	if n := len(v); n > 0 {
		if i := strings.IndexByte("KMGT", v[n-1]&^0x20); i >= 0 {
			mult = 1 << (10 * (i + 1))
			v = v[:n-1]
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("size %q: want a number with an optional K/M/G/T suffix", v)
	}
	*f = sizeFlag(n * mult)
	return nil
}
