package bench

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/cobaltstore/cobalt/storage-engine/bench/fio"
)

// Result is one workload's measurement.
type Result struct {
	Name     string
	Ops      int64
	Bytes    int64
	Elapsed  time.Duration
	P50, P99 time.Duration
	// CPU is the process's user+system CPU time during the workload (0 when not measured), which
	// includes background work such as the KV's flushes and the deferred-write flusher.
	CPU time.Duration
}

// CPUPerOp is the process CPU time per operation (0 when not measured).
func (r Result) CPUPerOp() time.Duration {
	if r.Ops == 0 {
		return 0
	}
	return r.CPU / time.Duration(r.Ops)
}

// processCPU returns the user+system CPU time the process has used (0 if unavailable).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// IOPS is operations per second.
func (r Result) IOPS() float64 { return float64(r.Ops) / r.Elapsed.Seconds() }

// MBps is megabytes (10^6) per second.
func (r Result) MBps() float64 { return float64(r.Bytes) / r.Elapsed.Seconds() / 1e6 }

// latencies collects per-operation latencies.
type latencies []time.Duration

func (l latencies) percentiles() (p50, p99 time.Duration) {
	if len(l) == 0 {
		return 0, 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	at := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))] }
	return at(0.50), at(0.99)
}

// Row pairs a store result with the fio result of the same shape (zero if fio was not run) and
// the same workload run through blockdev without the store (Raw). Floor is fio's durable floor
// with FloorJobs = min(QD, 16) processes: fio.DurableFloor for the 4 KiB random overwrites,
// fio.SeqDurableFloor for the 1 MiB sequential writes (zero otherwise).
type Row struct {
	Store, Fio, Raw Result
	Floor           fio.Result
	FloorJobs       int
}

// Report is what a suite run measured.
type Report struct {
	// Metadata says where the store's metadata (pebble: WAL and tables) lives, see
	// MetadataLocation.
	Metadata string
	Rows     []Row
	// Fio holds the raw fio results (libaio, no flush) by job name, e.g. randwrite-4k-qd16, for
	// the floor table's ratios to raw fio at QD16 and QD128.
	Fio map[string]Result
}

// Print writes the metadata location, a table of rows with the store's CPU per operation and its
// IOPS ratio to fio and to go-dev, and, when there are durable floors, a second table of the 4 KiB
// random overwrites beside the floor and beside raw fio at QD16 and QD128.
func Print(w io.Writer, rep Report) error {
	fmt.Fprintf(w, "metadata: %s\n", rep.Metadata)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tstore IOPS\tstore MB/s\tp50\tp99\tCPU/op\tfio IOPS\tfio MB/s\tfio p50\tfio p99\tstore/fio\tgo-dev IOPS\tstore/go-dev\t")
	for _, r := range rep.Rows {
		ratio, rawIOPS, rawRatio := "-", "-", "-"
		if r.Raw.Ops > 0 {
			rawIOPS = fmt.Sprintf("%.0f", r.Raw.IOPS())
			rawRatio = fmt.Sprintf("%.0f%%", 100*r.Store.IOPS()/r.Raw.IOPS())
		}
		fio := []string{"-", "-", "-", "-"}
		if r.Fio.Ops > 0 {
			ratio = fmt.Sprintf("%.0f%%", 100*r.Store.IOPS()/r.Fio.IOPS())
			fio = []string{fmt.Sprintf("%.0f", r.Fio.IOPS()), fmt.Sprintf("%.1f", r.Fio.MBps()), dur(r.Fio.P50), dur(r.Fio.P99)}
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Store.Name, r.Store.IOPS(), r.Store.MBps(),
			dur(r.Store.P50), dur(r.Store.P99), cpuPerOp(r.Store), fio[0], fio[1], fio[2], fio[3], ratio, rawIOPS, rawRatio)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("bench: print: %w", err)
	}
	if !slices.ContainsFunc(rep.Rows, func(r Row) bool { return r.Floor.IOs > 0 }) {
		return nil
	}
	fmt.Fprintln(w, "\ndurable floor: fio psync, direct, fdatasync after every write, N processes (raw fio: libaio, no flush)")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tstore IOPS\tCPU/op\tfloor jobs\tfloor IOPS\tfloor write p50\tfloor fdatasync p50\tstore/floor\tfio QD16 IOPS\tstore/fio QD16\tfio QD128 IOPS\tstore/fio QD128\t")
	for _, r := range rep.Rows {
		if r.Floor.IOs == 0 {
			continue
		}
		fioAt := func(name string) (iops, ratio string) {
			f, ok := rep.Fio[name]
			if !ok || f.Ops == 0 {
				return "-", "-"
			}
			return fmt.Sprintf("%.0f", f.IOPS()), fmt.Sprintf("%.0f%%", 100*r.Store.IOPS()/f.IOPS())
		}
		q16, q16r, q128, q128r := "-", "-", "-", "-"
		if strings.HasPrefix(r.Store.Name, "randwrite-4k-") { // raw 4 KiB random writes: no reference for other rows
			q16, q16r = fioAt("randwrite-4k-qd16")
			q128, q128r = fioAt("randwrite-4k-qd128")
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%d\t%.0f\t%s\t%s\t%.2f×\t%s\t%s\t%s\t%s\t\n", r.Store.Name, r.Store.IOPS(), cpuPerOp(r.Store),
			r.FloorJobs, r.Floor.IOPS, dur(r.Floor.LatP50), dur(r.Floor.SyncLatP50), r.Store.IOPS()/r.Floor.IOPS,
			q16, q16r, q128, q128r)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("bench: print: %w", err)
	}
	return nil
}

func cpuPerOp(r Result) string {
	if r.CPU == 0 {
		return "-"
	}
	return dur(r.CPUPerOp())
}

func dur(d time.Duration) string {
	return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
}
