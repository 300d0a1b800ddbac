package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"time"
)

// FioJob is one fio run on a raw device or file.
type FioJob struct {
	Name      string
	RW        string // randwrite, randread, write
	BlockSize int
	QD        int
	// Size limits the region of the device used, in bytes.
	Size     int64
	Duration time.Duration
}

// RunFio runs job against path with O_DIRECT and libaio and returns its result. fio must be on PATH.
func RunFio(ctx context.Context, path string, job FioJob) (Result, error) {
	args := []string{
		"--name=" + job.Name, "--filename=" + path, "--rw=" + job.RW, "--bs=" + strconv.Itoa(job.BlockSize),
		"--iodepth=" + strconv.Itoa(job.QD), "--ioengine=libaio", "--direct=1", "--size=" + strconv.FormatInt(job.Size, 10),
		"--runtime=" + strconv.FormatFloat(job.Duration.Seconds(), 'f', 0, 64) + "s", "--time_based", "--randrepeat=0",
		"--norandommap", "--output-format=json", "--percentile_list=50:99",
	}
	out, err := exec.CommandContext(ctx, "fio", args...).Output()
	if err != nil {
		return Result{}, fmt.Errorf("fio %s: %w", job.Name, err)
	}
	return parseFio(job.Name, job.RW, out)
}

type fioOutput struct {
	Jobs []struct {
		Read  fioSide `json:"read"`
		Write fioSide `json:"write"`
	} `json:"jobs"`
}

type fioSide struct {
	IOBytes int64   `json:"io_bytes"`
	TotalIO int64   `json:"total_ios"`
	Runtime int64   `json:"runtime"` // ms
	IOPS    float64 `json:"iops"`
	ClatNs  struct {
		Percentile map[string]float64 `json:"percentile"`
	} `json:"clat_ns"`
}

// parseFio extracts one job's result from fio's JSON output.
func parseFio(name, rw string, out []byte) (Result, error) {
	var fo fioOutput
	if err := json.Unmarshal(out, &fo); err != nil {
		return Result{}, fmt.Errorf("parse fio output: %w", err)
	}
	if len(fo.Jobs) == 0 {
		return Result{}, fmt.Errorf("fio output has no jobs")
	}
	side := fo.Jobs[0].Write
	if rw == "randread" || rw == "read" {
		side = fo.Jobs[0].Read
	}
	if side.Runtime <= 0 || side.TotalIO <= 0 {
		return Result{}, fmt.Errorf("fio job %s did no I/O", name)
	}
	pct := func(k string) time.Duration { return time.Duration(side.ClatNs.Percentile[k]) }
	return Result{Name: name, Ops: side.TotalIO, Bytes: side.IOBytes, Elapsed: time.Duration(side.Runtime) * time.Millisecond,
		P50: pct("50.000000"), P99: pct("99.000000")}, nil
}
