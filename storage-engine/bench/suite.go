package bench

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/cobaltstore/cobalt/storage-engine/bench/fio"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/store"
)

// SuiteOptions configure RunSuite.
type SuiteOptions struct {
	Config
	// DevicePath is the block device or file to use; it is overwritten.
	DevicePath string
	// DBDir holds the store's metadata (on the OS filesystem); it is emptied.
	DBDir string
	// Fio runs fio on the raw device first, for the comparison columns.
	Fio bool
	// Store options for Open (deferred threshold etc.).
	Store store.Options
	// Log receives progress lines (nil: none).
	Log io.Writer
	// Workloads, when not empty, limits the run to the workloads whose names start with one of
	// these prefixes (fio, go-dev and store alike); the prefill always runs.
	Workloads []string
	// Around, if set, wraps each store workload (e.g. to profile it on its own).
	Around func(name string, run func())
}

// selected reports whether workload name is to run.
func (o SuiteOptions) selected(name string) bool {
	if len(o.Workloads) == 0 {
		return true
	}
	for _, w := range o.Workloads {
		if strings.HasPrefix(name, w) {
			return true
		}
	}
	return false
}

// randWriteQDs returns the queue depths of the 4 KiB random overwrite workloads; 128 is the deep queue
// BlueStore's own benchmark runs at.
func randWriteQDs() []int { return []int{1, 16, 128} }

// floorJobs is the number of fio processes of the durable floor a 4 KiB random overwrite at queue
// depth qd is compared with: as many as requests in flight, at most 16.
func floorJobs(qd int) int { return min(qd, 16) }

// RunSuite runs the fio baselines and durable floors (if asked) and then every store workload on
// the same device.
func RunSuite(ctx context.Context, o SuiteOptions) (Report, error) {
	logf := func(format string, args ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, format+"\n", args...)
		}
	}
	region := int64(o.Objects) * objectSize
	rep := Report{Fio: map[string]Result{}}
	raw := map[string]Result{}
	floors := map[int]fio.Result{} // by number of processes
	jobs := []fio.Job{
		{Name: fmt.Sprintf("seqwrite-1m-qd%d", max(o.SeqQD, 1)), RW: "write", BlockSize: 1 << 20, QueueDepth: max(o.SeqQD, 1), Size: region},
	}
	for _, qd := range randWriteQDs() {
		jobs = append(jobs, fio.Job{Name: fmt.Sprintf("randwrite-4k-qd%d", qd), RW: "randwrite", BlockSize: 4096, QueueDepth: qd, Size: region})
	}
	jobs = append(jobs, fio.Job{Name: "randread-4k-qd16", RW: "randread", BlockSize: 4096, QueueDepth: 16, Size: region})
	for i := range jobs {
		jobs[i].Runtime = o.Duration
	}
	jobs = slices.DeleteFunc(jobs, func(j fio.Job) bool { return !o.selected(j.Name) })
	if o.Fio {
		for _, j := range jobs {
			fr, err := fio.Run(ctx, "", o.DevicePath, j)
			if err != nil {
				return rep, err
			}
			r := fromFio(fr)
			logf("fio   %-20s %8.0f IOPS %8.1f MB/s", j.Name, r.IOPS(), r.MBps())
			rep.Fio[j.Name] = r
		}
		for _, qd := range randWriteQDs() {
			n := floorJobs(qd)
			if _, done := floors[n]; done || !o.selected(fmt.Sprintf("randwrite-4k-qd%d", qd)) {
				continue
			}
			j := fio.DurableFloor(n, region, o.Duration)
			fr, err := fio.Run(ctx, "", o.DevicePath, j)
			if err != nil {
				return rep, err
			}
			logf("fio   %-20s %8.0f IOPS %8.1f MB/s, write p50 %v + fdatasync p50 %v (durable floor)", j.Name, fr.IOPS, fr.MBPerSec(), fr.LatP50, fr.SyncLatP50)
			floors[n] = fr
		}
	}
	dev, err := blockdev.Open(o.DevicePath, blockdev.Options{})
	if err != nil {
		return rep, err
	}
	defer dev.Close()
	for _, j := range jobs {
		r, err := RawDevice(ctx, dev, j, region)
		if err != nil {
			return rep, err
		}
		logf("go    %-20s %8.0f IOPS %8.1f MB/s (blockdev, no flush)", j.Name, r.IOPS(), r.MBps())
		raw[j.Name] = r
	}
	o.Store.FS = nil
	if _, err := store.Mkfs(ctx, dev, o.DBDir, store.MkfsOptions{Force: true}); err != nil {
		return rep, err
	}
	rep.Metadata = MetadataLocation(o.DBDir)
	logf("metadata: %s", rep.Metadata)
	s, err := store.Open(ctx, dev, o.DBDir, o.Store)
	if err != nil {
		return rep, err
	}
	add := func(name string, w func() (Result, error)) error {
		if !o.selected(name) {
			return nil
		}
		var r Result
		var err error
		before := s.Metrics()
		if o.Around != nil {
			o.Around(name, func() { r, err = w() })
		} else {
			r, err = w()
		}
		if err != nil {
			return err
		}
		logf("store %-20s %8.0f IOPS %8.1f MB/s p50 %v p99 %v, process CPU %v/op", r.Name, r.IOPS(), r.MBps(), r.P50, r.P99, r.CPUPerOp().Round(100*time.Nanosecond))
		if p := GroupPhases(before, s.Metrics()); p != "" {
			logf("  %s", p)
		}
		row := Row{Store: r, Fio: rep.Fio[r.Name], Raw: raw[r.Name]}
		for _, qd := range randWriteQDs() {
			if r.Name == fmt.Sprintf("randwrite-4k-qd%d", qd) {
				row.Floor, row.FloorJobs = floors[floorJobs(qd)], floorJobs(qd)
			}
		}
		rep.Rows = append(rep.Rows, row)
		return nil
	}
	closeErr := func(err error) (Report, error) {
		_ = s.Close()
		return rep, err
	}
	t := time.Now()
	if err := Prefill(ctx, s, o.Config); err != nil {
		return closeErr(err)
	}
	logf("prefilled %d x 4 MiB in %v", o.Objects, time.Since(t).Round(time.Millisecond))
	if err := add(fmt.Sprintf("seqwrite-1m-qd%d", max(o.SeqQD, 1)), func() (Result, error) { return SeqWrite(ctx, s, o.Config) }); err != nil {
		return closeErr(err)
	}
	for _, qd := range randWriteQDs() {
		if err := add(fmt.Sprintf("randwrite-4k-qd%d", qd), func() (Result, error) { return RandWrite(ctx, s, o.Config, qd) }); err != nil {
			return closeErr(err)
		}
	}
	logMetrics(logf, s.Metrics())
	// Remount so reads start cold, with the data buffer cache off so that every read reaches
	// the device (the onode cache warms as objects are touched, as in any cold start).
	if err := s.Close(); err != nil {
		return rep, err
	}
	cold := o.Store
	cold.DisableBufferedReads = true
	if s, err = store.Open(ctx, dev, o.DBDir, cold); err != nil {
		return rep, err
	}
	if err := add("randread-4k-qd16", func() (Result, error) { return RandRead(ctx, s, o.Config, 16) }); err != nil {
		return closeErr(err)
	}
	if err := add("create-small-qd16", func() (Result, error) { return CreateSmall(ctx, s, o.Config, 16) }); err != nil {
		return closeErr(err)
	}
	logMetrics(logf, s.Metrics())
	r, err := s.Fsck(ctx, false)
	if err != nil {
		return closeErr(err)
	}
	if !r.OK() {
		return closeErr(fmt.Errorf("fsck after benchmark: %v", r.Errors))
	}
	logf("fsck: ok (%d objects, %d extents)", r.Objects, r.Extents)
	return rep, s.Close()
}

func logMetrics(logf func(string, ...any), m store.Metrics) {
	logf("  commit groups %d, %.1f txns/group (max %d); per group p50/p99: stage %v/%v, data+flush %v/%v, kv sync %v/%v, publish %v/%v; deferred applied %d",
		m.CommitGroups, m.CommitGroupTxnsAvg, m.CommitGroupTxnsMax, m.StageLatency.P50, m.StageLatency.P99,
		m.DataLatency.P50, m.DataLatency.P99, m.KVSyncLatency.P50, m.KVSyncLatency.P99,
		m.PublishLatency.P50, m.PublishLatency.P99, m.DeferredApplied)
}

// fromFio converts a result of storage-engine/bench/fio.
func fromFio(r fio.Result) Result {
	return Result{Name: r.Name, Ops: r.IOs, Bytes: int64(r.BytesPerSec * r.Runtime.Seconds()), Elapsed: r.Runtime,
		P50: r.LatP50, P99: r.LatP99}
}
