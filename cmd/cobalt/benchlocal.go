package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/pprof"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/uuid"

	"github.com/cobaltstore/cobalt/node-daemon/app"
	"github.com/cobaltstore/cobalt/node-daemon/client"
	"github.com/cobaltstore/cobalt/node-daemon/engine"
	"github.com/cobaltstore/cobalt/node-daemon/pki"
	"github.com/cobaltstore/cobalt/node-daemon/server"
	"github.com/cobaltstore/cobalt/node-daemon/volbench"
	"github.com/cobaltstore/cobalt/node-daemon/volume"
	"github.com/cobaltstore/cobalt/storage-engine/bench/fio"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
)

// localBench is `cobalt bench --device`: fio on the raw device, then a store made on the same
// device and served in this process over mTLS gRPC on loopback, driven through the volume API by
// a client with its own certificate, so both columns are measured on one device in one run.
type localBench struct {
	device     string
	size       int64
	duration   time.Duration
	force      bool
	skipFio    bool
	cpuProfile string
	// direct drives the volume layer in-process instead of through gRPC (to see what the network
	// API costs).
	direct bool
	// unary uses one gRPC call per I/O instead of the IO stream.
	unary bool
	// frontend measures a volume as a Pod's block device (FUSE + loop) instead of the API.
	frontend bool
	log      io.Writer
}

// managerTarget drives a volume manager directly, without gRPC.
type managerTarget struct {
	m  *volume.Manager
	id string
}

func (t managerTarget) WriteAt(ctx context.Context, off int64, p []byte) error {
	return t.m.Write(ctx, t.id, off, p)
}

func (t managerTarget) ReadAt(ctx context.Context, off, n int64) ([]byte, error) {
	return t.m.Read(ctx, t.id, off, n)
}

// fioJobs mirrors volbench.Standard: a fill first (so reads hit data), then the same workloads.
func fioJobs(size int64, d time.Duration) []fio.Job {
	jobs := []fio.Job{{Name: "fill", RW: "write", BlockSize: 1 << 20, QueueDepth: 4, Size: size}}
	for _, w := range volbench.Standard(d) {
		rw := string(w.Pattern)
		jobs = append(jobs, fio.Job{Name: w.Name, RW: rw, BlockSize: int(w.BlockSize), QueueDepth: w.QueueDepth, Size: size, Runtime: d})
	}
	return jobs
}

func (b *localBench) run(ctx context.Context, out io.Writer) error {
	if err := b.checkDevice(); err != nil {
		return err
	}
	if b.frontend {
		return b.runFrontend(ctx, out)
	}
	raw := map[string]fio.Result{}
	if !b.skipFio {
		for _, j := range fioJobs(b.size, b.duration) {
			fmt.Fprintf(b.log, "fio %s on %s\n", j.Name, b.device)
			r, err := fio.Run(ctx, "", b.device, j)
			if err != nil {
				return err
			}
			raw[j.Name] = r
		}
	}
	results, err := b.runAPI(ctx)
	if err != nil {
		return err
	}
	rows := make([]fio.Row, 0, len(results))
	for _, r := range results {
		rows = append(rows, fio.Row{Workload: r.Workload.Name, Engine: asFio(r), Raw: raw[r.Workload.Name]})
	}
	what := "Cobalt volume API over gRPC+mTLS, multiplexed IO stream (loopback client)"
	if b.unary {
		what = "Cobalt volume API over gRPC+mTLS, one unary call per I/O (loopback client)"
	}
	if b.direct {
		what = "Cobalt volume layer called in-process (no gRPC)"
	}
	fmt.Fprintf(out, "engine = %s; fio = raw %s (O_DIRECT, libaio, no fsync); region %s, %s per workload\n",
		what, b.device, humanBytes(b.size), b.duration)
	return fio.WriteTable(out, rows)
}

func asFio(r volbench.Result) fio.Result {
	return fio.Result{Name: r.Workload.Name, IOPS: r.IOPS(), BytesPerSec: r.MBps() * 1e6, LatP50: r.P50, LatP99: r.P99, Runtime: r.Elapsed, IOs: r.Ops}
}

// checkDevice refuses a device that carries data unless --force.
func (b *localBench) checkDevice() error {
	dev, err := blockdev.Open(b.device, blockdev.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer dev.Close()
	if b.size <= 0 || b.size > dev.Size()/2 {
		return fmt.Errorf("--size %d must be positive and at most half of the device (%d bytes)", b.size, dev.Size())
	}
	sig, err := blockdev.DetectSignature(dev)
	if err != nil {
		return err
	}
	if !sig.IsZero() && !b.force {
		return fmt.Errorf("%s carries %s: the benchmark overwrites it; pass --force to allow that", b.device, sig)
	}
	return nil
}

// openStore makes a store on the device (destroying what it held), with its metadata on the
// device as the node daemon makes them, and opens its volume layer. close unmounts the store.
func (b *localBench) openStore(ctx context.Context) (st app.MountedStore, vm *volume.Manager, id string, closeStore func() error, err error) {
	// The Go collector set as the node daemon sets it for its stores (GOGC or GOMEMLIMIT in the
	// environment win).
	eng := engine.New(engine.Settings{EngineConfig: app.EngineConfig{CacheType: "2q", MemoryTarget: 256 << 20, MinAllocSize: 4096, DeferredWriteThreshold: 64 << 10}, GC: engine.NewGCBudget()})
	id = uuid.NewString()
	// The benchmark's store belongs to no StorageCluster: a cluster ID of its own.
	cluster := [16]byte(uuid.New())
	if err := eng.Mkfs(ctx, app.MkfsRequest{DevicePath: b.device, UUID: id, Force: true, ClusterID: cluster}); err != nil {
		return nil, nil, "", nil, err
	}
	st, err = eng.Open(ctx, app.OpenRequest{DevicePath: b.device, ClusterID: cluster})
	if err != nil {
		return nil, nil, "", nil, err
	}
	fmt.Fprintf(b.log, "store %s: metadata in %s\n", id, st.Snapshot().MetadataLocation)
	closeStore = st.Close
	vm, err = volume.Open(ctx, st)
	if err != nil {
		return nil, nil, "", nil, errors.Join(err, closeStore())
	}
	return st, vm, id, closeStore, nil
}

// runAPI makes a store on the device, serves it and runs the volume workloads against it.
func (b *localBench) runAPI(ctx context.Context) (results []volbench.Result, err error) {
	st, vm, id, closeStore, err := b.openStore(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, closeStore()) }()
	if b.direct {
		return b.runDirect(ctx, vm)
	}
	stores := server.NewStores()
	if err := stores.Add(&server.Mounted{Store: st, Volumes: vm, DevicePath: b.device}); err != nil {
		return nil, err
	}
	now := time.Now()
	ca, err := pki.NewCA("cobalt-bench", now, time.Hour)
	if err != nil {
		return nil, err
	}
	serving, err := ca.IssueServing(pki.ServingRequest{CommonName: "bench", IPs: []net.IP{net.ParseIP("127.0.0.1")}, Now: now, Validity: time.Hour})
	if err != nil {
		return nil, err
	}
	serverTLS, err := pki.ServerTLSConfig(serving, ca.Pool())
	if err != nil {
		return nil, err
	}
	srv, err := server.New(stores, serverTLS, logr.Discard())
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, lis) }()
	defer func() {
		stop()
		err = errors.Join(err, <-served)
	}()
	cert, err := ca.IssueClient("cobalt-bench", now, time.Hour)
	if err != nil {
		return nil, err
	}
	clientTLS, err := pki.ClientTLSConfig(cert, ca.Pool(), "")
	if err != nil {
		return nil, err
	}
	c, err := client.Dial(lis.Addr().String(), clientTLS)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if b.cpuProfile != "" {
		f, err := os.Create(b.cpuProfile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	return runVolumeBench(ctx, c, id, b.size, b.duration, b.unary, b.log)
}

// runDirect runs the workloads on the volume layer in this process, without the network API.
func (b *localBench) runDirect(ctx context.Context, vm *volume.Manager) ([]volbench.Result, error) {
	if _, err := vm.Create(ctx, "bench", b.size, 0); err != nil {
		return nil, err
	}
	tg := managerTarget{m: vm, id: "bench"}
	fill := volbench.Workload{Name: "fill", Pattern: volbench.SeqWrite, BlockSize: 1 << 20, QueueDepth: 4, MaxOps: b.size / (1 << 20)}
	if _, err := volbench.Run(ctx, tg, b.size, fill, 1); err != nil {
		return nil, err
	}
	var results []volbench.Result
	for i, w := range volbench.Standard(b.duration) {
		fmt.Fprintf(b.log, "running %s in-process for %s\n", w.Name, b.duration)
		r, err := volbench.Run(ctx, tg, b.size, w, uint64(i+2))
		if err != nil {
			return nil, err
		}
		results = append(results, r)
	}
	return results, nil
}
