package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/cobaltstore/cobalt/storage-engine/bench/fio"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/store"
)

// Layout is where the benchmarked store keeps its metadata database.
type Layout string

const (
	// MetadataOnDevice keeps it in a region of the benchmarked device, as the node daemon makes
	// stores (the default).
	MetadataOnDevice Layout = "device"
	// MetadataInDir keeps it in SuiteOptions.DBDir on the host's file system, as stores made
	// before label version 2 do.
	MetadataInDir Layout = "dir"
	// MetadataOnSeparateDevice keeps it on SuiteOptions.MetaDevicePath, a separate metadata
	// device (BlueStore's block.db), overwritten.
	MetadataOnSeparateDevice Layout = "metadev"
)

// ParseLayouts parses a comma-separated list of layouts ("device", "dir", "metadev",
// "device,dir,metadev").
func ParseLayouts(s string) ([]Layout, error) {
	var out []Layout
	for _, f := range strings.Split(s, ",") {
		switch l := Layout(strings.TrimSpace(f)); l {
		case MetadataOnDevice, MetadataInDir, MetadataOnSeparateDevice:
			if !slices.Contains(out, l) {
				out = append(out, l)
			}
		default:
			return nil, fmt.Errorf("metadata layout %q: want %q, %q or %q (or several, comma-separated)", f, MetadataOnDevice, MetadataInDir, MetadataOnSeparateDevice)
		}
	}
	return out, nil
}

// SuiteOptions configure RunSuite.
type SuiteOptions struct {
	Config
	// DevicePath is the block device or file to use; it is overwritten.
	DevicePath string
	// Layouts are the metadata layouts to run the store workloads with, one after the other on
	// the same device, after one run of the baselines (default: MetadataOnDevice only).
	Layouts []Layout
	// DBDir holds the store's metadata for MetadataInDir (on the OS filesystem); it is emptied.
	DBDir string
	// MetaDevicePath is the separate metadata device for MetadataOnSeparateDevice; it is
	// overwritten.
	MetaDevicePath string
	// Fio runs fio on the raw device first, for the comparison columns.
	Fio bool
	// Store options for Open (deferred threshold etc.).
	Store store.Options
	// Log receives progress lines (nil: none).
	Log io.Writer
	// Workloads, when not empty, limits the run to the workloads whose names start with one of
	// these prefixes (fio, go-dev and store alike); the prefill always runs.
	Workloads []string
	// Rounds, when > 1, runs the 4 KiB random reads this many times, alternating fio (with Fio),
	// go-dev and the store, and reports the median of each (readRounds). Only the first store
	// round runs under Around.
	Rounds int
	// Around, if set, wraps each store workload (e.g. to profile it on its own). With several
	// layouts the name is prefixed with the layout ("device.randread-4k-qd16").
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

// baselines are what the store is compared with, measured once for every layout.
type baselines struct {
	// fio holds raw fio by job name, raw the same jobs through blockdev, floors fio's durable
	// floors by number of processes, seqFloor the 1 MiB sequential one (seqFloorJobs processes).
	fio, raw     map[string]Result
	floors       map[int]fio.Result
	seqFloor     fio.Result
	seqFloorJobs int
}

// seqName is the name of the 1 MiB sequential write workload at queue depth qd.
func seqName(qd int) string { return fmt.Sprintf("seqwrite-1m-qd%d", max(qd, 1)) }

func (o SuiteOptions) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}

// RunSuite runs the fio baselines and durable floors (if asked), then every store workload on the
// same device once per metadata layout. It returns one report per layout, in order, sharing the
// baselines.
func RunSuite(ctx context.Context, o SuiteOptions) ([]Report, error) {
	layouts := o.Layouts
	if len(layouts) == 0 {
		layouts = []Layout{MetadataOnDevice}
	}
	if slices.Contains(layouts, MetadataInDir) && o.DBDir == "" {
		return nil, fmt.Errorf("bench: the %q metadata layout needs a metadata directory", MetadataInDir)
	}
	if slices.Contains(layouts, MetadataOnSeparateDevice) && o.MetaDevicePath == "" {
		return nil, fmt.Errorf("bench: the %q metadata layout needs a metadata device", MetadataOnSeparateDevice)
	}
	base, dev, err := runBaselines(ctx, o)
	if err != nil {
		return nil, err
	}
	defer dev.Close()
	var reps []Report
	for _, l := range layouts {
		rep, err := runStore(ctx, o, dev, l, base)
		if len(rep.Rows) > 0 || err == nil {
			reps = append(reps, rep)
		}
		if err != nil {
			return reps, err
		}
	}
	return reps, nil
}

// runBaselines runs fio (if asked), then opens the device and runs the same jobs through
// blockdev. The caller closes the device.
func runBaselines(ctx context.Context, o SuiteOptions) (baselines, blockdev.Device, error) {
	logf := o.logf
	region := int64(o.Objects) * objectSize
	base := baselines{fio: map[string]Result{}, raw: map[string]Result{}, floors: map[int]fio.Result{}}
	raw, floors := base.raw, base.floors
	jobs := []fio.Job{
		{Name: seqName(o.SeqQD), RW: "write", BlockSize: 1 << 20, QueueDepth: max(o.SeqQD, 1), Size: region},
	}
	for _, qd := range randWriteQDs() {
		jobs = append(jobs, fio.Job{Name: fmt.Sprintf("randwrite-4k-qd%d", qd), RW: "randwrite", BlockSize: 4096, QueueDepth: qd, Size: region})
	}
	jobs = append(jobs, randReadJob(region, o.Duration))
	for i := range jobs {
		jobs[i].Runtime = o.Duration
	}
	jobs = slices.DeleteFunc(jobs, func(j fio.Job) bool { return !o.selected(j.Name) })
	if needsPrecondition(jobs) {
		t := time.Now()
		if err := preconditionPath(ctx, o.DevicePath, region); err != nil {
			return base, nil, err
		}
		logf("preconditioned %d MiB (the random reads' region) in %v", region>>20, time.Since(t).Round(time.Millisecond))
	}
	if o.Fio {
		for _, j := range jobs {
			fr, err := fio.Run(ctx, "", o.DevicePath, j)
			if err != nil {
				return base, nil, err
			}
			r := fromFio(fr)
			logf("fio   %-20s %8.0f IOPS %8.1f MB/s", j.Name, r.IOPS(), r.MBps())
			base.fio[j.Name] = r
		}
		for _, qd := range randWriteQDs() {
			n := floorJobs(qd)
			if _, done := floors[n]; done || !o.selected(fmt.Sprintf("randwrite-4k-qd%d", qd)) {
				continue
			}
			j := fio.DurableFloor(n, region, o.Duration)
			fr, err := fio.Run(ctx, "", o.DevicePath, j)
			if err != nil {
				return base, nil, err
			}
			logf("fio   %-20s %8.0f IOPS %8.1f MB/s, write p50 %v + fdatasync p50 %v (durable floor)", j.Name, fr.IOPS, fr.MBPerSec(), fr.LatP50, fr.SyncLatP50)
			floors[n] = fr
		}
		if o.selected(seqName(o.SeqQD)) {
			n := floorJobs(max(o.SeqQD, 1))
			j := fio.SeqDurableFloor(n, region, o.Duration)
			fr, err := fio.Run(ctx, "", o.DevicePath, j)
			if err != nil {
				return base, nil, err
			}
			logf("fio   %-20s %8.0f IOPS %8.1f MB/s, write p50 %v + fdatasync p50 %v (durable floor)", j.Name, fr.IOPS, fr.MBPerSec(), fr.LatP50, fr.SyncLatP50)
			base.seqFloor, base.seqFloorJobs = fr, n
		}
	}
	dev, err := blockdev.Open(o.DevicePath, blockdev.Options{})
	if err != nil {
		return base, nil, err
	}
	for _, j := range jobs {
		r, err := RawDevice(ctx, dev, j, region)
		if err != nil {
			return base, nil, errors.Join(err, dev.Close())
		}
		logf("go    %-20s %8.0f IOPS %8.1f MB/s p50 %v p99 %v, process CPU %v/op (blockdev, no flush)", j.Name, r.IOPS(), r.MBps(), r.P50, r.P99, r.CPUPerOp().Round(100*time.Nanosecond))
		raw[j.Name] = r
	}
	return base, dev, nil
}

// runStore makes a store on dev with its metadata as layout says and runs every store workload.
func runStore(ctx context.Context, o SuiteOptions, dev blockdev.Device, layout Layout, base baselines) (Report, error) {
	logf := o.logf
	rep := Report{Fio: base.fio}
	raw, floors := base.raw, base.floors
	dbDir := ""
	if layout == MetadataInDir {
		dbDir = o.DBDir
	}
	o.Store.FS = nil
	mo := store.MkfsOptions{Force: true}
	if layout == MetadataOnSeparateDevice {
		md, err := blockdev.Open(o.MetaDevicePath, blockdev.Options{})
		if err != nil {
			return rep, err
		}
		defer md.Close()
		mo.MetadataDevice, o.Store.MetadataDevice = md, md
	}
	if _, err := store.Mkfs(ctx, dev, dbDir, mo); err != nil {
		return rep, err
	}
	s, err := store.Open(ctx, dev, dbDir, o.Store)
	if err != nil {
		return rep, err
	}
	rep.Metadata = metadataLocation(s, dbDir, o.MetaDevicePath)
	logf("metadata: %s", rep.Metadata)
	add := func(name string, w func() (Result, error)) error {
		if !o.selected(name) {
			return nil
		}
		aroundName := name
		if len(o.Layouts) > 1 {
			aroundName = string(layout) + "." + name // e.g. one profile per workload and layout
		}
		var r Result
		var err error
		before := s.Metrics()
		if o.Around != nil {
			o.Around(aroundName, func() { r, err = w() })
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
		if r.Name == seqName(o.SeqQD) {
			row.Floor, row.FloorJobs = base.seqFloor, base.seqFloorJobs
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
	if s, err = store.Open(ctx, dev, dbDir, cold); err != nil {
		return rep, err
	}
	if err := add("randread-4k-qd16", func() (Result, error) { return RandRead(ctx, s, o.Config, 16) }); err != nil {
		return closeErr(err)
	}
	if n := len(rep.Rows); o.Rounds > 1 && n > 0 && rep.Rows[n-1].Store.Name == "randread-4k-qd16" {
		if rep.Rows[n-1], err = readRounds(ctx, o, dev, s, rep.Rows[n-1]); err != nil {
			return closeErr(err)
		}
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
