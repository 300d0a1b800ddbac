// Package fio runs the fio benchmark against a raw device or file and parses its JSON output, so
// that Cobalt's bench command can print the engine's figures next to the raw device's, measured on
// the same device in the same run.
//
// Every job uses O_DIRECT (--direct=1) and latency percentiles of total latency
// (--lat_percentiles=1). By default a job is one process of libaio at the job's queue depth with no
// fsync: the raw device's ceiling. DurableFloor builds the other reference, the durable floor:
// N processes of synchronous pwrites (psync, one I/O in flight each), each write followed by an
// fdatasync, reported as one group; that is what a naive writer pays to make every 4 KiB write
// durable when acknowledged, as the engine does. fio is an external program: Run returns
// ErrNotInstalled when it is missing (`make bench` installs it; `make test` never does).
package fio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// ErrNotInstalled is returned when the fio binary cannot be found.
var ErrNotInstalled = errors.New("fio: not installed (apt-get install -y fio)")

// Job is one fio workload.
type Job struct {
	// Name identifies the job in fio's output and in Result.
	Name string
	// RW is fio's --rw: "randwrite", "randread", "write" (sequential) or "read".
	RW string
	// BlockSize is the I/O size in bytes.
	BlockSize int
	// QueueDepth is the number of I/Os in flight per process (fio --iodepth); it must be 1 with a
	// synchronous engine.
	QueueDepth int
	// Engine is fio's --ioengine: "" or "libaio" (asynchronous, QueueDepth in flight), or "psync"
	// (pwrite/pread, one I/O in flight per process).
	Engine string
	// Jobs is the number of processes running the job at once (fio --numjobs, 0 means 1), all on
	// the same region; their figures are summed into one Result (--group_reporting).
	Jobs int
	// Size is the region of the target used, in bytes from offset 0 (fio --size); with
	// OffsetIncrement, the region of each process.
	Size int64
	// OffsetIncrement, when > 0, starts process i at offset i × OffsetIncrement (fio
	// --offset_increment), so that the processes of a sequential job write regions of their own.
	OffsetIncrement int64
	// Runtime, when > 0, runs the job for this long (time based); when 0 the job does Size bytes of
	// I/O once (used for the sequential write, which also fills the region before random reads).
	Runtime time.Duration
	// FsyncEvery, when > 0, issues an fsync after every FsyncEvery writes (fio --fsync), as a
	// database or a file system committing its journal does.
	FsyncEvery int
	// FdatasyncEvery, when > 0, issues an fdatasync after every FdatasyncEvery writes of each
	// process (fio --fdatasync); 1 makes every write durable before the next one starts.
	FdatasyncEvery int
}

// DurableFloor returns the durable-floor job for 4 KiB random overwrites over size bytes: jobs
// processes, each a loop of one direct pwrite followed by one fdatasync (psync engine), time
// based for runtime. Its name is randwrite-4k-fdatasync-<jobs>j.
func DurableFloor(jobs int, size int64, runtime time.Duration) Job {
	return Job{
		Name: fmt.Sprintf("randwrite-4k-fdatasync-%dj", jobs), RW: "randwrite", BlockSize: 4096, QueueDepth: 1,
		Engine: "psync", Jobs: jobs, Size: size, Runtime: runtime, FdatasyncEvery: 1,
	}
}

// SeqDurableFloor returns the durable-floor job for 1 MiB sequential writes over size bytes: jobs
// processes, each writing its own slice of the region in order, one direct 1 MiB pwrite followed
// by one fdatasync at a time (psync engine), time based for runtime. Its name is
// seqwrite-1m-fdatasync-<jobs>j.
func SeqDurableFloor(jobs int, size int64, runtime time.Duration) Job {
	jobs = max(jobs, 1)
	slice := size / int64(jobs) / (1 << 20) * (1 << 20)
	return Job{
		Name: fmt.Sprintf("seqwrite-1m-fdatasync-%dj", jobs), RW: "write", BlockSize: 1 << 20, QueueDepth: 1,
		Engine: "psync", Jobs: jobs, Size: slice, OffsetIncrement: slice, Runtime: runtime, FdatasyncEvery: 1,
	}
}

// engine is the --ioengine of j.
func (j Job) engine() string {
	if j.Engine == "" {
		return "libaio"
	}
	return j.Engine
}

// Percentiles reported in Result.
var percentiles = []string{"50.000000", "90.000000", "99.000000", "99.900000"}

// StandardJobs returns the workloads the Cobalt benchmark compares against, over a region of size
// bytes, in this order: a 1 MiB sequential write of the whole region (which also prefills it so the
// reads hit real data), 4 KiB random writes at queue depth 1 and 16, and 4 KiB random reads at
// queue depth 1 and 16, each time-based for runtime.
func StandardJobs(size int64, runtime time.Duration) []Job {
	return []Job{
		{Name: "seqwrite-1m-qd1", RW: "write", BlockSize: 1 << 20, QueueDepth: 1, Size: size},
		{Name: "randwrite-4k-qd1", RW: "randwrite", BlockSize: 4096, QueueDepth: 1, Size: size, Runtime: runtime},
		{Name: "randwrite-4k-qd16", RW: "randwrite", BlockSize: 4096, QueueDepth: 16, Size: size, Runtime: runtime},
		{Name: "randread-4k-qd1", RW: "randread", BlockSize: 4096, QueueDepth: 1, Size: size, Runtime: runtime},
		{Name: "randread-4k-qd16", RW: "randread", BlockSize: 4096, QueueDepth: 16, Size: size, Runtime: runtime},
	}
}

func (j Job) validate() error {
	switch {
	case j.Name == "" || strings.ContainsAny(j.Name, " \t\n="):
		return fmt.Errorf("fio: job name %q must be non-empty without spaces or '='", j.Name)
	case j.RW != "randwrite" && j.RW != "randread" && j.RW != "write" && j.RW != "read":
		return fmt.Errorf("fio: job %s: rw %q not supported", j.Name, j.RW)
	case j.BlockSize <= 0 || j.BlockSize%512 != 0:
		return fmt.Errorf("fio: job %s: block size %d is not a positive multiple of 512", j.Name, j.BlockSize)
	case j.QueueDepth <= 0:
		return fmt.Errorf("fio: job %s: queue depth %d", j.Name, j.QueueDepth)
	case j.Size < int64(j.BlockSize):
		return fmt.Errorf("fio: job %s: size %d smaller than one block", j.Name, j.Size)
	case j.Runtime < 0:
		return fmt.Errorf("fio: job %s: negative runtime", j.Name)
	case j.FsyncEvery < 0 || j.FdatasyncEvery < 0:
		return fmt.Errorf("fio: job %s: negative fsync or fdatasync interval", j.Name)
	case j.engine() != "libaio" && j.engine() != "psync":
		return fmt.Errorf("fio: job %s: engine %q not supported (libaio or psync)", j.Name, j.Engine)
	case j.engine() == "psync" && j.QueueDepth != 1:
		return fmt.Errorf("fio: job %s: the synchronous engine psync has one I/O in flight, not %d", j.Name, j.QueueDepth)
	case j.Jobs < 0:
		return fmt.Errorf("fio: job %s: negative number of jobs %d", j.Name, j.Jobs)
	case j.OffsetIncrement < 0:
		return fmt.Errorf("fio: job %s: negative offset increment %d", j.Name, j.OffsetIncrement)
	}
	return nil
}

// Args returns fio's command-line arguments for running job against target.
func (j Job) Args(target string) ([]string, error) {
	if err := j.validate(); err != nil {
		return nil, err
	}
	args := []string{
		"--name=" + j.Name,
		"--filename=" + target,
		"--rw=" + j.RW,
		"--bs=" + strconv.Itoa(j.BlockSize),
		"--iodepth=" + strconv.Itoa(j.QueueDepth),
		"--size=" + strconv.FormatInt(j.Size, 10),
		"--ioengine=" + j.engine(),
		"--direct=1",
		"--numjobs=" + strconv.Itoa(max(j.Jobs, 1)),
		"--randrepeat=1",
		"--norandommap=1",
		"--lat_percentiles=1",
		"--percentile_list=50:90:99:99.9",
		"--output-format=json",
	}
	if j.Jobs > 1 {
		args = append(args, "--group_reporting=1")
	}
	if j.FsyncEvery > 0 {
		args = append(args, "--fsync="+strconv.Itoa(j.FsyncEvery))
	}
	if j.FdatasyncEvery > 0 {
		args = append(args, "--fdatasync="+strconv.Itoa(j.FdatasyncEvery))
	}
	if j.OffsetIncrement > 0 {
		args = append(args, "--offset_increment="+strconv.FormatInt(j.OffsetIncrement, 10))
	}
	if j.Runtime > 0 {
		secs := max(1, int(j.Runtime.Round(time.Second)/time.Second))
		args = append(args, "--time_based=1", "--runtime="+strconv.Itoa(secs))
	}
	return args, nil
}

// Result is one job's measured figures.
type Result struct {
	Name string
	// IOPS and BytesPerSec are for the job's direction (writes for write jobs, reads for read jobs).
	IOPS        float64
	BytesPerSec float64
	// Latency of one I/O (submission to completion): mean and percentiles.
	LatMean, LatP50, LatP90, LatP99, LatP999 time.Duration
	// Syncs is the number of fsyncs or fdatasyncs issued (0 for jobs without them) and
	// SyncLatMean, SyncLatP50 and SyncLatP99 their latency: a write of a durable-floor job takes
	// its write latency plus one sync.
	Syncs                               int64
	SyncLatMean, SyncLatP50, SyncLatP99 time.Duration
	// Runtime is how long fio measured.
	Runtime time.Duration
	// IOs is the number of I/Os completed.
	IOs int64
}

// MBPerSec is BytesPerSec in MB/s (10^6 bytes), as fio prints it.
func (r Result) MBPerSec() float64 { return r.BytesPerSec / 1e6 }

// Run runs job against target (a file or block device) with the fio at fioPath ("" looks up "fio"
// in PATH) and returns its result. The context cancels fio.
func Run(ctx context.Context, fioPath, target string, job Job) (Result, error) {
	if fioPath == "" {
		p, err := exec.LookPath("fio")
		if err != nil {
			return Result{}, ErrNotInstalled
		}
		fioPath = p
	}
	args, err := job.Args(target)
	if err != nil {
		return Result{}, err
	}
	cmd := exec.CommandContext(ctx, fioPath, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return Result{}, fmt.Errorf("fio: job %s on %s: %w: %s", job.Name, target, err, strings.TrimSpace(stderr.String()))
	}
	results, err := ParseJSON(out)
	if err != nil {
		return Result{}, fmt.Errorf("fio: job %s on %s: %w", job.Name, target, err)
	}
	for _, r := range results {
		if r.Name == job.Name {
			return r, nil
		}
	}
	return Result{}, fmt.Errorf("fio: job %s on %s: not in fio's output", job.Name, target)
}

// fio's JSON output, only the fields used.
type fioOutput struct {
	Version string   `json:"fio version"`
	Jobs    []fioJob `json:"jobs"`
}

type fioJob struct {
	Name  string `json:"jobname"`
	Error int    `json:"error"`
	Read  fioDir `json:"read"`
	Write fioDir `json:"write"`
	Sync  struct {
		Lat fioLat `json:"lat_ns"`
	} `json:"sync"`
}

type fioDir struct {
	IOBytes   int64   `json:"io_bytes"`
	BWBytes   float64 `json:"bw_bytes"`
	IOPS      float64 `json:"iops"`
	RuntimeMS int64   `json:"runtime"`
	TotalIOs  int64   `json:"total_ios"`
	Lat       fioLat  `json:"lat_ns"`
	CLat      fioLat  `json:"clat_ns"`
}

type fioLat struct {
	N          int64            `json:"N"`
	Mean       float64          `json:"mean"`
	Percentile map[string]int64 `json:"percentile"`
}

// ParseJSON parses the output of `fio --output-format=json` into one Result per job. A job's
// direction is the one that did I/O (writes win if both did). Latency percentiles come from total
// latency (lat_ns) when fio ran with --lat_percentiles=1, otherwise from completion latency. Sync
// latencies (fio's "sync" section, present with --fsync or --fdatasync) fill the Sync fields when
// the job issued any; their percentiles are then required too.
func ParseJSON(data []byte) ([]Result, error) {
	// fio may print warnings before the JSON document.
	if i := strings.IndexByte(string(data), '{'); i > 0 {
		data = data[i:]
	}
	var out fioOutput
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("parse fio JSON: %w", err)
	}
	if len(out.Jobs) == 0 {
		return nil, errors.New("parse fio JSON: no jobs")
	}
	results := make([]Result, 0, len(out.Jobs))
	for _, j := range out.Jobs {
		if j.Error != 0 {
			return nil, fmt.Errorf("parse fio JSON: job %s reported error %d", j.Name, j.Error)
		}
		d := j.Read
		if j.Write.IOBytes > 0 || j.Read.IOBytes == 0 {
			d = j.Write
		}
		if d.IOBytes == 0 {
			return nil, fmt.Errorf("parse fio JSON: job %s did no I/O", j.Name)
		}
		lat := d.Lat
		if len(lat.Percentile) == 0 {
			lat = d.CLat
		}
		r := Result{
			Name: j.Name, IOPS: d.IOPS, BytesPerSec: d.BWBytes, IOs: d.TotalIOs,
			LatMean: time.Duration(lat.Mean), Runtime: time.Duration(d.RuntimeMS) * time.Millisecond,
		}
		dst := []*time.Duration{&r.LatP50, &r.LatP90, &r.LatP99, &r.LatP999}
		for i, p := range percentiles {
			v, ok := lat.Percentile[p]
			if !ok {
				return nil, fmt.Errorf("parse fio JSON: job %s: no %s percentile (run fio with --percentile_list=50:90:99:99.9)", j.Name, strings.TrimRight(strings.TrimRight(p, "0"), "."))
			}
			*dst[i] = time.Duration(v)
		}
		if sl := j.Sync.Lat; sl.N > 0 {
			p50, ok50 := sl.Percentile[percentiles[0]]
			p99, ok99 := sl.Percentile[percentiles[2]]
			if !ok50 || !ok99 {
				return nil, fmt.Errorf("parse fio JSON: job %s: %d syncs without their 50th and 99th latency percentiles", j.Name, sl.N)
			}
			r.Syncs, r.SyncLatMean, r.SyncLatP50, r.SyncLatP99 = sl.N, time.Duration(sl.Mean), time.Duration(p50), time.Duration(p99)
		}
		results = append(results, r)
	}
	return results, nil
}
