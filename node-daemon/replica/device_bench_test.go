package replica_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/uuid"
	"github.com/prometheus/procfs"

	"github.com/cobaltstore/cobalt/node-daemon/app"
	"github.com/cobaltstore/cobalt/node-daemon/engine"
	"github.com/cobaltstore/cobalt/node-daemon/pki"
	"github.com/cobaltstore/cobalt/node-daemon/replica"
	"github.com/cobaltstore/cobalt/node-daemon/server"
	"github.com/cobaltstore/cobalt/node-daemon/volbench"
	"github.com/cobaltstore/cobalt/node-daemon/volume"
	"github.com/cobaltstore/cobalt/storage-engine/bench/fio"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev/blockdevtest"
)

// Settings of BenchmarkReplicaDevices.
const (
	devBenchDeviceSize = 4 << 30   // each loop device (a file written whole first, unless devBenchSparseEnv)
	devBenchVolume     = 512 << 20 // every volume, written whole
	devBenchDirty      = 64 << 20  // written without one copy before the resync
	devBenchQD         = 16        // 4 KiB random writes in flight
	devBenchSeqQD      = 4         // 1 MiB sequential writes in flight
	// devBenchDurationEnv overrides the length of each 4 KiB random-write run (default 10s).
	devBenchDurationEnv = "REPLICA_BENCH_DURATION"
	// devBenchProfileEnv, when set, is a file that receives a CPU profile of the 3-replica 4 KiB
	// random-write run only (go test's -cpuprofile would cover fio, the fills and the rebuild too),
	// devBenchSeqProfileEnv one of its 1 MiB sequential writes and devBenchRebuildProfileEnv one of
	// the rebuild.
	devBenchProfileEnv        = "REPLICA_BENCH_CPUPROFILE"
	devBenchSeqProfileEnv     = "REPLICA_BENCH_SEQ_CPUPROFILE"
	devBenchRebuildProfileEnv = "REPLICA_BENCH_REBUILD_CPUPROFILE"
	// devBenchSyncOnlyEnv, when "1", runs only fio's sequential write, the 2-replica volume's fill
	// and the rebuild and resync (to iterate on them; the table then has those rows only).
	devBenchSyncOnlyEnv = "REPLICA_BENCH_SYNC_ONLY"
	// devBenchSyncParallelismEnv and devBenchCopyRegionsEnv, when set, are the rebuild's and
	// resync's SyncOptions.Parallelism and CopyRegions.
	devBenchSyncParallelismEnv = "REPLICA_BENCH_SYNC_PARALLELISM"
	devBenchCopyRegionsEnv     = "REPLICA_BENCH_COPY_REGIONS"
	// devBenchSparseEnv, when "1", leaves the loop devices' files sparse, as the benchmark had
	// them before: the first write to each block then pays the host file system's allocation,
	// which fell on the rebuild's and the stores' new space more than on fio.
	devBenchSparseEnv = "REPLICA_BENCH_SPARSE"
)

// BenchmarkReplicaDevices measures the replicated write path on three loop devices (direct I/O),
// each the device of one node daemon server on loopback (mTLS, the node API, as in the other
// replica tests), beside fio on the same devices and the single-copy volume, and prints one table
// per iteration (run it with -benchtime 1x; `make replica-bench`). Every figure of a table comes
// from the same run:
//
//   - fio on the raw device: 4 KiB random writes at QD16 (libaio, no fsync), the durable floor (16
//     jobs of pwrite+fdatasync) and 1 MiB sequential writes at QD4, the device's bandwidth;
//   - one single-copy volume (volume.Manager.Write in process, as the Coordinator's local replica
//     writes), then three single-copy volumes, one per device, written at once: the device work of
//     three copies without replication; the single-copy volume runs again after the replicated
//     ones, so that the table shows how far the load moved during the run (ratios use the mean);
//   - the Coordinator on node-a with 1, 2 and 3 replicas (the others over the ReplicaService),
//     each write acknowledged when every in-sync copy has it durably, as Coordinator.Write does;
//   - a rebuild of a 512 MiB written copy onto node-c, and a resync of 64 MiB written while node-c
//     was out of sync.
//
// Each volume is first written whole with 1 MiB sequential writes (QD4), so the 4 KiB random writes
// (QD16) overwrite data as fio's do. CPU is this process's user+system time over the run (the
// loop devices' kernel workers are not in it) per write, and per write per copy; the read and
// write system calls per write (device and socket I/O together) come from /proc/self/io. uptime's load
// averages are printed before and after: the machine may be shared. The process runs with the
// GOMAXPROCS the node daemon sets itself (blockdev.RaiseGOMAXPROCS), unless GOMAXPROCS is set.
func BenchmarkReplicaDevices(b *testing.B) {
	if _, err := exec.LookPath("fio"); err != nil {
		b.Skipf("%v (make replica-bench installs it)", fio.ErrNotInstalled)
	}
	d := 10 * time.Second
	var syncOpts replica.SyncOptions
	for env, v := range map[string]*int{devBenchSyncParallelismEnv: &syncOpts.Parallelism, devBenchCopyRegionsEnv: &syncOpts.CopyRegions} {
		if s := os.Getenv(env); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 {
				b.Fatalf("%s=%q: want a positive number", env, s)
			}
			*v = n
		}
	}
	if s := os.Getenv(devBenchDurationEnv); s != "" {
		v, err := time.ParseDuration(s)
		if err != nil || v <= 0 {
			b.Fatalf("%s=%q: want a positive duration", devBenchDurationEnv, s)
		}
		d = v
	}
	// The node side runs with the Ps the node daemon gives itself (blockdev.MinIOProcs): with
	// go test's default of one P per core, goroutines blocked in a device's pwrite hold the Ps
	// that the replicas' streams and the other stores need, and the replicated rows measured a
	// half to two thirds of what the daemon's setting gives. An explicit GOMAXPROCS wins.
	if os.Getenv("GOMAXPROCS") == "" {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
		blockdev.RaiseGOMAXPROCS()
	}
	loopDevice, files := blockdevtest.AllocatedLoopDevice, "written whole before attaching"
	if os.Getenv(devBenchSparseEnv) == "1" {
		loopDevice, files = blockdevtest.LoopDevice, "sparse ("+devBenchSparseEnv+"=1)"
	}
	var devs [3]string
	for i := range devs {
		devs[i] = loopDevice(b, devBenchDeviceSize)
	}
	fmt.Printf("loop device files: %s\n", files)
	for i := range b.N {
		run := &devBench{devs: devs, duration: d, profile: os.Getenv(devBenchProfileEnv), seqProfile: os.Getenv(devBenchSeqProfileEnv), rebuildProfile: os.Getenv(devBenchRebuildProfileEnv), syncOnly: os.Getenv(devBenchSyncOnlyEnv) == "1", syncOpts: syncOpts, gen: uint64(i + 1)}
		if err := run.run(context.Background(), b, os.Stdout); err != nil {
			b.Fatal(err)
		}
	}
}

// devBench is one run of BenchmarkReplicaDevices.
type devBench struct {
	devs     [3]string
	duration time.Duration
	// profile, seqProfile and rebuildProfile are files for CPU profiles of the 3-replica 4 KiB
	// and 1 MiB runs and of the rebuild ("": none).
	profile, seqProfile, rebuildProfile string
	// syncOnly: only fio's sequential write, the rebuild and the resync.
	syncOnly bool
	// syncOpts are the rebuild's and resync's SyncOptions (Parallelism and CopyRegions only).
	syncOpts replica.SyncOptions
	gen      uint64
	rows     []devBenchRow
}

// devBenchRow is one line of the table.
type devBenchRow struct {
	name     string
	copies   int     // copies each acknowledged write lands on (0: fio)
	iops     float64 // volume writes per second (per volume for several volumes)
	mbps     float64
	p50, p99 time.Duration
	cpu      time.Duration // this process's CPU time over the run
	// reads and writes are the read and write system calls this process made over the run
	// (devices and sockets; /proc/self/io's syscr and syscw), -1 when unknown.
	reads, writes int64
	ops           int64 // writes over the run, all volumes together
	note          string
}

func (r *devBench) add(row devBenchRow) { r.rows = append(r.rows, row) }

func (r *devBench) run(ctx context.Context, b *testing.B, out io.Writer) error {
	loadBefore := loadAvg()
	if r.syncOnly {
		return r.runSyncOnly(ctx, b, out, loadBefore)
	}
	// fio first, on the raw devices: the stores made afterwards overwrite what it wrote.
	raw, err := fio.Run(ctx, "", r.devs[0], fio.Job{Name: "randwrite-4k-qd16", RW: "randwrite", BlockSize: 4096, QueueDepth: devBenchQD, Size: devBenchVolume, Runtime: r.duration})
	if err != nil {
		return err
	}
	r.add(fioRow("fio raw 4K randwrite QD16 (no fsync)", raw))
	floor, err := fio.Run(ctx, "", r.devs[0], fio.DurableFloor(devBenchQD, devBenchVolume, r.duration))
	if err != nil {
		return err
	}
	r.add(fioRow("fio 4K pwrite+fdatasync, 16 jobs (durable floor)", floor))
	seq, err := fio.Run(ctx, "", r.devs[2], fio.Job{Name: "write-1m-qd4", RW: "write", BlockSize: 1 << 20, QueueDepth: devBenchSeqQD, Size: devBenchVolume})
	if err != nil {
		return err
	}
	r.add(fioRow("fio raw 1M seq write QD4", seq))

	c, closeAll, err := startDeviceCluster(ctx, b, r.devs)
	if err != nil {
		return err
	}
	// On an error below, the benchmark's cleanup stops the servers and closes the stores.
	if err := r.single(ctx, c); err != nil {
		return err
	}
	for n := 1; n <= 3; n++ {
		if err := r.replicated(ctx, b, c, n); err != nil {
			return err
		}
	}
	// The single copy once more, after the replicated runs: the two single-copy rows show how far
	// the machine's load moved the figures during the run.
	if err := r.singleAgain(ctx, c); err != nil {
		return err
	}
	rebuild, resync, err := r.sync(ctx, b, c)
	if err != nil {
		return err
	}
	if err := closeAll(); err != nil {
		return err
	}
	loadAfter := loadAvg()

	fmt.Fprintf(out, "\nreplicated write path on %s (loop, direct I/O), volumes of %d MiB, 4K runs of %s, GOMAXPROCS %d on %d CPUs\n", strings.Join(r.devs[:], ", "), devBenchVolume>>20, r.duration, runtime.GOMAXPROCS(0), runtime.NumCPU())
	fmt.Fprintf(out, "load before: %s\nload after:  %s\n", loadBefore, loadAfter)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "case\tIOPS\tMB/s\tp50\tp99\tCPU µs/write\tCPU µs/write/copy\tsyscalls/write (r+w)\t  note")
	for _, row := range r.rows {
		cpu, perCopy, calls := "-", "-", "-"
		if row.ops > 0 && row.copies > 0 {
			w := float64(row.cpu.Microseconds()) / float64(row.ops)
			cpu = fmt.Sprintf("%.0f", w)
			perCopy = fmt.Sprintf("%.0f", w/float64(row.copies))
			if row.reads >= 0 && row.writes >= 0 {
				calls = fmt.Sprintf("%.1f+%.1f", float64(row.reads)/float64(row.ops), float64(row.writes)/float64(row.ops))
			}
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.1f\t%s\t%s\t%s\t%s\t%s\t  %s\n", row.name, row.iops, row.mbps, us(row.p50), us(row.p99), cpu, perCopy, calls, row.note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	get := func(name string) devBenchRow {
		for _, row := range r.rows {
			if row.name == name {
				return row
			}
		}
		return devBenchRow{}
	}
	single, again, three := get("single copy 4K randwrite QD16"), get("single copy again 4K randwrite QD16"), get("3 replicas 4K randwrite QD16")
	singleSeq, againSeq, threeSeq := get("single copy 1M seq write QD4"), get("single copy again 1M seq write QD4"), get("3 replicas 1M seq write QD4")
	fmt.Fprintf(out, "ratios: 4K 3 replicas / single copy = %.2f (%.2f to the first single-copy run, %.2f to the second; aim >= 0.50); 3 replicas / 3 single copies at once = %.2f; 1M 3 replicas / single copy = %.2f\n",
		2*three.iops/(single.iops+again.iops), three.iops/single.iops, three.iops/again.iops, three.iops/get("3 single copies at once 4K randwrite QD16").iops,
		2*threeSeq.mbps/(singleSeq.mbps+againSeq.mbps))
	printSync(out, rebuild, resync, seq)
	fmt.Fprintf(out, "rebuild copy / single-copy 1M seq write QD4 (the engine's own durable 1 MiB writes, mean of both runs) = %.2f\n",
		mb(rebuild.copied, rebuild.copy)/((singleSeq.mbps+againSeq.mbps)/2))
	return nil
}

// printSync prints the rebuild's and the resync's lines.
func printSync(out io.Writer, rebuild, resync syncFigures, seq fio.Result) {
	fmt.Fprintf(out, "rebuild: %d MiB copied and %d MiB compared in %s (copy phase %s: %.0f MB/s; %.0f MB/s with the comparison) = %.2f of fio seq write %.0f MB/s (%.2f with the comparison; aim >= 0.50); CPU %.2f ms per MiB copied and compared\n",
		rebuild.copied>>20, rebuild.compared>>20, rebuild.total.Round(time.Millisecond), rebuild.copy.Round(time.Millisecond), mb(rebuild.copied, rebuild.copy), mb(rebuild.copied, rebuild.total),
		mb(rebuild.copied, rebuild.copy)/seq.MBPerSec(), seq.MBPerSec(), mb(rebuild.copied, rebuild.total)/seq.MBPerSec(),
		float64(rebuild.cpu.Milliseconds())/float64(rebuild.copied>>20))
	fmt.Fprintf(out, "resync: %d MiB dirty of %d, %d MiB copied, %d MiB compared in %s (copy phase %s, %.0f MB/s); CPU %.2f ms per MiB\n",
		resync.dirty>>20, devBenchVolume>>20, resync.copied>>20, resync.compared>>20, resync.total.Round(time.Millisecond), resync.copy.Round(time.Millisecond), mb(resync.copied, resync.copy),
		float64(resync.cpu.Milliseconds())/float64(max(resync.copied>>20, 1)))
}

// runSyncOnly runs fio's sequential write, fills the 2-replica volume and runs the rebuild and
// the resync, and prints their lines.
func (r *devBench) runSyncOnly(ctx context.Context, b *testing.B, out io.Writer, loadBefore string) error {
	seq, err := fio.Run(ctx, "", r.devs[2], fio.Job{Name: "write-1m-qd4", RW: "write", BlockSize: 1 << 20, QueueDepth: devBenchSeqQD, Size: devBenchVolume})
	if err != nil {
		return err
	}
	c, closeAll, err := startDeviceCluster(ctx, b, r.devs)
	if err != nil {
		return err
	}
	const id = "r2"
	for _, nd := range c.nodes[:2] {
		if _, err := nd.vols.Create(ctx, id, devBenchVolume, 0); err != nil {
			return err
		}
	}
	co, err := r.coordinate(ctx, id, c.nodes[0], replicaOf(b, c, c.nodes[1:2], id)...)
	if err != nil {
		return err
	}
	if _, err := seqFill(ctx, coordTarget{co}, devBenchVolume, devBenchSeqQD); err != nil {
		return fmt.Errorf("fill %s: %w", id, err)
	}
	rebuild, resync, err := r.sync(ctx, b, c)
	if err != nil {
		return err
	}
	if err := closeAll(); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nrebuild and resync only (%s=1) on %s (loop, direct I/O), volume of %d MiB, GOMAXPROCS %d on %d CPUs\n", devBenchSyncOnlyEnv, strings.Join(r.devs[:], ", "), devBenchVolume>>20, runtime.GOMAXPROCS(0), runtime.NumCPU())
	fmt.Fprintf(out, "load before: %s\nload after:  %s\n", loadBefore, loadAvg())
	fmt.Fprintf(out, "fio raw 1M seq write QD4: %.1f MB/s\n", seq.MBPerSec())
	printSync(out, rebuild, resync, seq)
	return nil
}

func mb(n int64, d time.Duration) float64 { return float64(n) / 1e6 / d.Seconds() }

func us(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%dµs", d.Microseconds())
}

func fioRow(name string, r fio.Result) devBenchRow {
	return devBenchRow{name: name, iops: r.IOPS, mbps: r.MBPerSec(), p50: r.LatP50, p99: r.LatP99}
}

// loadAvg is uptime's load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown: " + err.Error()
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// cpuTime is this process's user plus system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// syscallCounts returns the read and write system calls this process made so far (syscr and
// syscw of /proc/self/io, read with procfs: device preads and pwrites, socket reads and writes,
// and the like), or -1, -1 when the kernel does not say.
func syscallCounts() (reads, writes int64) {
	self, err := procfs.Self()
	if err != nil {
		return -1, -1
	}
	pio, err := self.IO()
	if err != nil {
		return -1, -1
	}
	return int64(pio.SyscR), int64(pio.SyscW)
}

// single runs the single-copy rows: one volume, then one volume on each device at once.
func (r *devBench) single(ctx context.Context, c *cluster) error {
	a := c.nodes[0]
	if _, err := a.vols.Create(ctx, "single", devBenchVolume, 0); err != nil {
		return err
	}
	one := []volbench.Target{volumeTarget{a.vols, "single"}}
	if err := r.workloads(ctx, "single copy", 1, one); err != nil {
		return err
	}
	if err := a.vols.Delete(ctx, "single"); err != nil {
		return err
	}
	var three []volbench.Target
	for _, n := range c.nodes {
		if _, err := n.vols.Create(ctx, "single3", devBenchVolume, 0); err != nil {
			return err
		}
		three = append(three, volumeTarget{n.vols, "single3"})
	}
	if err := r.workloads(ctx, "3 single copies at once", 1, three); err != nil {
		return err
	}
	for _, n := range c.nodes {
		if err := n.vols.Delete(ctx, "single3"); err != nil {
			return err
		}
	}
	return nil
}

// singleAgain runs the single-copy rows again on a new volume.
func (r *devBench) singleAgain(ctx context.Context, c *cluster) error {
	a := c.nodes[0]
	if _, err := a.vols.Create(ctx, "single-again", devBenchVolume, 0); err != nil {
		return err
	}
	if err := r.workloads(ctx, "single copy again", 1, []volbench.Target{volumeTarget{a.vols, "single-again"}}); err != nil {
		return err
	}
	return a.vols.Delete(ctx, "single-again")
}

// replicated runs the rows of a coordinator on node-a with n replicas.
func (r *devBench) replicated(ctx context.Context, b *testing.B, c *cluster, n int) error {
	id := fmt.Sprintf("r%d", n)
	for _, nd := range c.nodes[:n] {
		if _, err := nd.vols.Create(ctx, id, devBenchVolume, 0); err != nil {
			return err
		}
	}
	co, err := r.coordinate(ctx, id, c.nodes[0], replicaOf(b, c, c.nodes[1:n], id)...)
	if err != nil {
		return err
	}
	name := fmt.Sprintf("%d replicas", n)
	if n == 1 {
		name = "1 replica"
	}
	if err := r.workloads(ctx, name, n, []volbench.Target{coordTarget{co}}); err != nil {
		return err
	}
	if n == 2 {
		return nil // kept for the rebuild
	}
	for _, nd := range c.nodes[:n] {
		if err := nd.vols.Delete(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

func replicaOf(b *testing.B, c *cluster, nodes []*node, id string) []replica.Replica {
	var rs []replica.Replica
	for _, n := range nodes {
		rs = append(rs, c.remote(b, n, id))
	}
	return rs
}

// coordinate opens a coordinator on local as the daemon does (dirty log kept on the local copy).
func (r *devBench) coordinate(ctx context.Context, id string, local *node, remotes ...replica.Replica) (*replica.Coordinator, error) {
	l := replica.NewLocal(local.srv.Replicas(), local.name, local.storeUUID, id)
	r.gen++
	return replica.Open(ctx, replica.Config{
		Generation: r.gen, Local: l, Remotes: remotes, Recorder: &recorder{},
		DirtyStore: l.DirtyStore(r.gen), ReplicaTimeout: 30 * time.Second,
	})
}

// workloads writes every target whole with 1 MiB sequential writes, then runs 4 KiB random writes
// on all of them at once for the run's duration, and adds a row for each. copies is how many
// copies each write lands on.
func (r *devBench) workloads(ctx context.Context, name string, copies int, targets []volbench.Target) error {
	profile, seqProfile := "", ""
	if copies == 3 && len(targets) == 1 {
		profile, seqProfile = r.profile, r.seqProfile
	}
	var seqRow devBenchRow
	err := profiled(seqProfile, func() (err error) {
		seqRow, err = runAll(ctx, targets, func(ctx context.Context, t volbench.Target, _ int) (volbench.Result, error) {
			return seqFill(ctx, t, devBenchVolume, devBenchSeqQD)
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: 1 MiB sequential writes: %w", name, err)
	}
	seqRow.name, seqRow.copies = name+" 1M seq write QD4", copies
	r.add(seqRow)
	w := volbench.Workload{Name: "4k-randwrite-qd16", Pattern: volbench.RandWrite, BlockSize: 4096, QueueDepth: devBenchQD, Duration: r.duration}
	var randRow devBenchRow
	err = profiled(profile, func() (err error) {
		randRow, err = runAll(ctx, targets, func(ctx context.Context, t volbench.Target, i int) (volbench.Result, error) {
			return volbench.Run(ctx, t, devBenchVolume, w, uint64(i+1))
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: 4 KiB random writes: %w", name, err)
	}
	randRow.name, randRow.copies = name+" 4K randwrite QD16", copies
	r.add(randRow)
	return nil
}

// profiled runs fn with a CPU profile written to path ("": without).
func profiled(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return errors.Join(err, f.Close())
	}
	err = fn()
	pprof.StopCPUProfile()
	return errors.Join(err, f.Close())
}

// runAll runs one workload on every target at once and sums them into a row whose IOPS and MB/s
// are per target and whose latencies are the worst target's.
func runAll(ctx context.Context, targets []volbench.Target, run func(context.Context, volbench.Target, int) (volbench.Result, error)) (devBenchRow, error) {
	results := make([]volbench.Result, len(targets))
	errs := make([]error, len(targets))
	cpu0 := cpuTime()
	reads0, writes0 := syscallCounts()
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() { results[i], errs[i] = run(ctx, t, i) })
	}
	wg.Wait()
	row := devBenchRow{cpu: cpuTime() - cpu0, reads: -1, writes: -1}
	if reads1, writes1 := syscallCounts(); reads0 >= 0 && reads1 >= 0 {
		row.reads, row.writes = reads1-reads0, writes1-writes0
	}
	if err := errors.Join(errs...); err != nil {
		return row, err
	}
	for _, res := range results {
		row.iops += res.IOPS() / float64(len(targets))
		row.mbps += res.MBps() / float64(len(targets))
		row.p50, row.p99 = max(row.p50, res.P50), max(row.p99, res.P99)
		row.ops += res.Ops
	}
	if len(targets) > 1 {
		row.note = fmt.Sprintf("per volume; sum %.0f IOPS", row.iops*float64(len(targets)))
	}
	return row, nil
}

// seqFill writes [0, size) of t once with 1 MiB writes of random data from qd workers, each
// writing its own contiguous lane in order.
func seqFill(ctx context.Context, t volbench.Target, size int64, qd int) (volbench.Result, error) {
	const bs = 1 << 20
	lane := size / bs / int64(qd)
	lats := make([][]time.Duration, qd)
	errs := make([]error, qd)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range qd {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 11))
			buf := make([]byte, bs)
			for i := range buf {
				buf[i] = byte(rng.Uint32())
			}
			for n := range lane {
				buf[0] = byte(n) // no two writes alike
				t0 := time.Now()
				if err := t.WriteAt(ctx, (int64(w)*lane+n)*bs, buf); err != nil {
					errs[w] = err
					return
				}
				lats[w] = append(lats[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return volbench.Result{}, err
	}
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	return volbenchResult(all, bs, elapsed), nil
}

// volbenchResult summarizes latencies of bs-byte writes taken over elapsed.
func volbenchResult(lats []time.Duration, bs int64, elapsed time.Duration) volbench.Result {
	sorted := append([]time.Duration(nil), lats...)
	slices.Sort(sorted)
	pct := func(p float64) time.Duration { return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))] }
	n := int64(len(sorted))
	return volbench.Result{Ops: n, Bytes: n * bs, Elapsed: elapsed, P50: pct(0.5), P99: pct(0.99)}
}

// syncFigures is what a rebuild or resync measured.
type syncFigures struct {
	dirty, copied, compared int64
	copy, total             time.Duration
	cpu                     time.Duration // this process's CPU time over the whole
}

// sync rebuilds volume r2 (written whole, on node-a and node-b) onto node-c, then drops node-c
// under a new coordinator, writes devBenchDirty bytes without it and resyncs it.
func (r *devBench) sync(ctx context.Context, b *testing.B, c *cluster) (rebuild, resync syncFigures, err error) {
	a, nb, cn := c.nodes[0], c.nodes[1], c.nodes[2]
	const id = "r2"
	co, err := r.coordinate(ctx, id, a, c.remote(b, nb, id))
	if err != nil {
		return rebuild, resync, err
	}
	if _, err := cn.vols.Create(ctx, id, devBenchVolume, 0); err != nil {
		return rebuild, resync, err
	}
	target := c.remote(b, cn, id)
	err = profiled(r.rebuildProfile, func() (err error) {
		rebuild, err = timedSync(r.syncOpts, func(opts replica.SyncOptions) (replica.SyncResult, error) {
			return co.Rebuild(ctx, a.name, target, opts)
		})
		return err
	})
	if err != nil {
		return rebuild, resync, fmt.Errorf("rebuild: %w", err)
	}
	// A new generation with node-c failing every write: the first write drops it, and every
	// region written from then on is dirty for it.
	down := &failing{Syncer: c.remote(b, cn, id)}
	co, err = r.coordinate(ctx, id, a, c.remote(b, nb, id), down)
	if err != nil {
		return rebuild, resync, err
	}
	down.down.Store(true)
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i*31 + 5)
	}
	stride := int64(devBenchVolume / devBenchDirty) // one 1 MiB region in every stride
	for off := int64(0); off < devBenchVolume; off += stride << 20 {
		if err := co.Write(ctx, off, buf); err != nil {
			return rebuild, resync, fmt.Errorf("write without node-c: %w", err)
		}
	}
	if got := co.InSync(); len(got) != 2 {
		return rebuild, resync, fmt.Errorf("in sync after writes without node-c = %v, want node-c dropped", got)
	}
	dirty := co.Dirty().Bytes(cn.name)
	resync, err = timedSync(r.syncOpts, func(opts replica.SyncOptions) (replica.SyncResult, error) {
		return co.Resync(ctx, a.name, c.remote(b, cn, id), opts)
	})
	resync.dirty = dirty
	if err != nil {
		return rebuild, resync, fmt.Errorf("resync: %w", err)
	}
	return rebuild, resync, nil
}

// timedSync runs a rebuild or resync unthrottled and times its copy phase and the whole.
func timedSync(base replica.SyncOptions, run func(replica.SyncOptions) (replica.SyncResult, error)) (syncFigures, error) {
	var once sync.Once
	var copyEnd time.Time
	opts := base
	opts.Progress = func(p replica.Progress) {
		if p.Phase != replica.PhaseCopy {
			once.Do(func() { copyEnd = time.Now() })
		}
	}
	cpu0, start := cpuTime(), time.Now()
	res, err := run(opts)
	end := time.Now()
	once.Do(func() { copyEnd = end })
	return syncFigures{copied: res.Copied, compared: res.Compared, copy: copyEnd.Sub(start), total: end.Sub(start), cpu: cpuTime() - cpu0}, err
}

// volumeTarget writes a volume through its manager in this process (the single-copy path).
type volumeTarget struct {
	m  *volume.Manager
	id string
}

func (t volumeTarget) WriteAt(ctx context.Context, off int64, p []byte) error {
	return t.m.Write(ctx, t.id, off, p)
}

func (t volumeTarget) ReadAt(ctx context.Context, off, n int64) ([]byte, error) {
	return t.m.Read(ctx, t.id, off, n)
}

// coordTarget writes a replicated volume through its coordinator.
type coordTarget struct{ co *replica.Coordinator }

func (t coordTarget) WriteAt(ctx context.Context, off int64, p []byte) error {
	return t.co.Write(ctx, off, p)
}

func (t coordTarget) ReadAt(ctx context.Context, off, n int64) ([]byte, error) {
	return t.co.Read(ctx, off, n)
}

// startDeviceCluster makes a store on each device (as the node daemon does: metadata on the
// device) and serves it from its own node daemon server on loopback over mTLS. closeAll stops the
// servers and closes the stores; it is also registered for cleanup if the run fails.
func startDeviceCluster(ctx context.Context, b *testing.B, devs [3]string) (*cluster, func() error, error) {
	ca, err := pki.NewCA("replica-bench-ca", time.Now(), 2*time.Hour)
	if err != nil {
		return nil, nil, err
	}
	c := &cluster{ca: ca}
	var closers []func() error
	var once sync.Once
	var closeErr error
	closeAll := func() error {
		once.Do(func() {
			for i := len(closers) - 1; i >= 0; i-- {
				closeErr = errors.Join(closeErr, closers[i]())
			}
		})
		return closeErr
	}
	b.Cleanup(func() {
		if err := closeAll(); err != nil {
			b.Error(err)
		}
	})
	clusterID := [16]byte(uuid.New())
	// The Go collector set as a node daemon sets it for its stores, for the three nodes' stores
	// of this one process (GOGC or GOMEMLIMIT in the environment win).
	gc := engine.NewGCBudget()
	for i, dev := range devs {
		name := "node-" + string(rune('a'+i))
		e := engine.New(engine.Settings{EngineConfig: app.EngineConfig{CacheType: "2q", MemoryTarget: 256 << 20, MinAllocSize: 4096, DeferredWriteThreshold: 64 << 10}, GC: gc})
		id := uuid.NewString()
		if err := e.Mkfs(ctx, app.MkfsRequest{DevicePath: dev, UUID: id, Force: true, ClusterID: clusterID}); err != nil {
			return nil, closeAll, fmt.Errorf("mkfs %s on %s: %w", name, dev, err)
		}
		st, err := e.Open(ctx, app.OpenRequest{DevicePath: dev, ClusterID: clusterID})
		if err != nil {
			return nil, closeAll, fmt.Errorf("open store of %s: %w", name, err)
		}
		closers = append(closers, st.Close)
		vm, err := volume.Open(ctx, st)
		if err != nil {
			return nil, closeAll, err
		}
		stores := server.NewStores()
		if err := stores.Add(&server.Mounted{Store: st, Volumes: vm, DevicePath: dev}); err != nil {
			return nil, closeAll, err
		}
		cert, err := ca.IssueServing(pki.ServingRequest{CommonName: name, DNSNames: []string{name}, IPs: []net.IP{net.ParseIP("127.0.0.1")}, Now: time.Now(), Validity: 2 * time.Hour})
		if err != nil {
			return nil, closeAll, err
		}
		tlsCfg, err := pki.ServerTLSConfig(cert, ca.Pool())
		if err != nil {
			return nil, closeAll, err
		}
		srv, err := server.New(stores, tlsCfg, logr.Discard())
		if err != nil {
			return nil, closeAll, err
		}
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, closeAll, err
		}
		sctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = srv.Serve(sctx, lis) // Stop makes Serve return an error
		}()
		nd := &node{name: name, addr: lis.Addr().String(), storeUUID: id, srv: srv, vols: vm}
		nd.stop = func() { srv.Stop(); cancel(); <-done }
		closers = append(closers, func() error { nd.stop(); return nil })
		c.nodes = append(c.nodes, nd)
	}
	return c, closeAll, nil
}
