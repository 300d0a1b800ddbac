package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"time"

	"github.com/go-logr/logr"

	"github.com/cobaltstore/cobalt/node-daemon/frontend/fuseloop"
	"github.com/cobaltstore/cobalt/node-daemon/volume"
	"github.com/cobaltstore/cobalt/storage-engine/bench/fio"
)

// pvcJobs are the workloads of `cobalt bench --device D --frontend` (make pvc-bench): what a
// database or a file system in a Pod does to its block device. A fill first, so reads hit data.
func pvcJobs(size int64, d time.Duration) []fio.Job {
	return []fio.Job{
		{Name: "fill", RW: "write", BlockSize: 1 << 20, QueueDepth: 4, Size: size},
		{Name: "randread-4k-qd1", RW: "randread", BlockSize: 4096, QueueDepth: 1, Size: size, Runtime: d},
		{Name: "randread-4k-qd16", RW: "randread", BlockSize: 4096, QueueDepth: 16, Size: size, Runtime: d},
		{Name: "randwrite-4k-qd1", RW: "randwrite", BlockSize: 4096, QueueDepth: 1, Size: size, Runtime: d},
		{Name: "randwrite-4k-qd16", RW: "randwrite", BlockSize: 4096, QueueDepth: 16, Size: size, Runtime: d},
		{Name: "randwrite-4k-qd16-fsync32", RW: "randwrite", BlockSize: 4096, QueueDepth: 16, Size: size, Runtime: d, FsyncEvery: 32},
		{Name: "seqwrite-1m-qd16", RW: "write", BlockSize: 1 << 20, QueueDepth: 16, Size: size, Runtime: d},
	}
}

// runFrontend measures the block device a Pod gets: fio on the raw device, then a store made on
// the same device, one volume of it exposed by the FUSE + loop frontend exactly as the CSI node
// plugin stages it, and the same fio jobs (O_DIRECT, libaio) on that loop device.
func (b *localBench) runFrontend(ctx context.Context, out io.Writer) (err error) {
	jobs := pvcJobs(b.size, b.duration)
	raw := map[string]fio.Result{}
	if !b.skipFio {
		for _, j := range jobs {
			fmt.Fprintf(b.log, "fio %s on the raw device %s\n", j.Name, b.device)
			r, err := fio.Run(ctx, "", b.device, j)
			if err != nil {
				return err
			}
			raw[j.Name] = r
		}
	}
	_, vm, _, closeStore, err := b.openStore(ctx)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, closeStore()) }()
	const volID = "pvc-bench"
	if _, err := vm.Create(ctx, volID, b.size, 0); err != nil {
		return err
	}
	mountDir, err := os.MkdirTemp("", "cobalt-pvc-bench-fuse-")
	if err != nil {
		return err
	}
	defer os.Remove(mountDir)
	fe, err := fuseloop.New(ctx, fuseloop.Options{MountDir: mountDir, Log: logr.Discard()})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, fe.Close(context.WithoutCancel(ctx))) }()
	dev, err := fe.Expose(ctx, volID, b.size, volume.Backend{Manager: vm, ID: volID})
	if err != nil {
		return err
	}
	if b.cpuProfile != "" {
		f, err := os.Create(b.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var rows []fio.Row
	for _, j := range jobs {
		fmt.Fprintf(b.log, "fio %s on the volume's device %s\n", j.Name, dev.Path)
		r, err := fio.Run(ctx, "", dev.Path, j)
		if err != nil {
			return err
		}
		if j.Name != "fill" {
			rows = append(rows, fio.Row{Workload: j.Name, Engine: r, Raw: raw[j.Name]})
		}
	}
	fmt.Fprintf(out, "engine = fio on %s: a Cobalt volume as a Pod's block device (FUSE + loop, O_DIRECT); raw = fio on %s; region %s, %s per workload\n",
		dev.Path, b.device, humanBytes(b.size), b.duration)
	return fio.WriteTable(out, rows)
}
