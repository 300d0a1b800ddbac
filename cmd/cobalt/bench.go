package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cobaltstore/cobalt/node-daemon/client"
	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
	"github.com/cobaltstore/cobalt/node-daemon/volbench"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
)

// unaryTarget drives a volume with one unary gRPC call per I/O.
type unaryTarget struct {
	c   *client.Client
	ref *nodepb.VolumeRef
}

func (v unaryTarget) WriteAt(ctx context.Context, off int64, p []byte) error {
	_, err := v.c.Volumes.Write(ctx, &nodepb.WriteRequest{Ref: v.ref, Offset: off, Data: p})
	return err
}

func (v unaryTarget) ReadAt(ctx context.Context, off, n int64) ([]byte, error) {
	resp, err := v.c.Volumes.Read(ctx, &nodepb.ReadRequest{Ref: v.ref, Offset: off, Length: n})
	return resp.GetData(), err
}

// streamTarget drives a volume through one multiplexed IO stream shared by every worker.
type streamTarget struct {
	io  *client.VolumeIO
	ref *nodepb.VolumeRef
}

func (v streamTarget) WriteAt(ctx context.Context, off int64, p []byte) error {
	return v.io.Write(ctx, v.ref, off, p)
}

func (v streamTarget) ReadAt(ctx context.Context, off, n int64) ([]byte, error) {
	return v.io.Read(ctx, v.ref, off, n)
}

func newBenchCommand(g *globalOptions) *cobra.Command {
	var (
		t        targetOptions
		size     int64
		duration time.Duration
		local    localBench
		unary    bool
	)
	cmd := &cobra.Command{
		Use:   "bench (--addr HOST:PORT --store UUID | --device PATH) [--size BYTES] [--duration D]",
		Short: "Benchmark the volume API over mTLS: 4K random write/read at QD1 and QD16, 1M sequential write",
		Long: `Benchmark the volume API over gRPC with mutual TLS.

With --addr and --store it drives a running node daemon's store through a scratch volume.
With --device it measures one device in one run: fio on the raw device first, then a store made
on that device (its contents are destroyed) served in-process over mTLS on loopback, and prints
both side by side with their ratios. --cpuprofile writes a pprof CPU profile of the API run.
With --device and --frontend the volume is exposed as the block device a Pod gets (the CSI node
plugin's FUSE + loop frontend) and fio runs on it: 4K random read and write at QD1 and QD16, 4K
random write QD16 with an fsync every 32 writes, 1M sequential write.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if local.device != "" {
				// The in-process node side runs as the node daemon does (see blockdev.MinIOProcs).
				if os.Getenv("GOMAXPROCS") == "" {
					blockdev.RaiseGOMAXPROCS()
				}
				local.size, local.duration, local.unary, local.log = size, duration, unary, cmd.ErrOrStderr()
				return local.run(cmd.Context(), cmd.OutOrStdout())
			}
			tg, err := t.resolve(cmd.Context(), g, args)
			if err != nil {
				return err
			}
			defer tg.Close()
			results, err := runVolumeBench(cmd.Context(), tg.client, tg.ref.GetStoreUuid(), size, duration, unary, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			return printBench(cmd.OutOrStdout(), results)
		},
	}
	t.addFlags(cmd)
	cmd.Flags().Int64Var(&size, "size", 1<<30, "size of the benchmark volume and region in bytes")
	cmd.Flags().DurationVar(&duration, "duration", 10*time.Second, "duration of each workload")
	cmd.Flags().BoolVar(&unary, "unary", false, "one unary call per I/O instead of the multiplexed IO stream")
	cmd.Flags().StringVar(&local.device, "device", "", "benchmark this device or file locally against fio (destroys its contents)")
	cmd.Flags().BoolVar(&local.force, "force", false, "with --device: overwrite a device that carries a filesystem or store")
	cmd.Flags().BoolVar(&local.skipFio, "no-fio", false, "with --device: skip the fio baseline")
	cmd.Flags().BoolVar(&local.direct, "direct", false, "with --device: call the volume layer in-process instead of through gRPC")
	cmd.Flags().BoolVar(&local.frontend, "frontend", false, "with --device: measure a volume as a Pod's block device (FUSE + loop frontend) beside fio on the raw device")
	cmd.Flags().StringVar(&local.cpuProfile, "cpuprofile", "", "with --device: write a CPU profile of the API run to this file")
	return cmd
}

// runVolumeBench creates a scratch volume on the store, fills it (so reads hit data), runs the
// standard workloads and deletes the volume.
func runVolumeBench(ctx context.Context, c *client.Client, store string, size int64, d time.Duration, unary bool, log io.Writer) (results []volbench.Result, err error) {
	var suffix [4]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return nil, err
	}
	ref := &nodepb.VolumeRef{StoreUuid: store, VolumeId: "bench-" + hex.EncodeToString(suffix[:])}
	if _, err := c.Volumes.CreateVolume(ctx, &nodepb.CreateVolumeRequest{Ref: ref, SizeBytes: size}); err != nil {
		return nil, fmt.Errorf("create benchmark volume: %w", err)
	}
	defer func() {
		// Clean up even if ctx was canceled.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
		defer cancel()
		if _, derr := c.Volumes.DeleteVolume(dctx, &nodepb.DeleteVolumeRequest{Ref: ref}); derr != nil && err == nil {
			err = fmt.Errorf("delete benchmark volume: %w", derr)
		}
	}()
	var tg volbench.Target = unaryTarget{c: c, ref: ref}
	if !unary {
		vio, err := c.OpenIO(ctx)
		if err != nil {
			return nil, err
		}
		defer func() { err = errors.Join(err, vio.Close()) }()
		tg = streamTarget{io: vio, ref: ref}
	}
	fmt.Fprintf(log, "filling %s of volume %s\n", humanBytes(size), ref.GetVolumeId())
	fill := volbench.Workload{Name: "fill", Pattern: volbench.SeqWrite, BlockSize: 1 << 20, QueueDepth: 4, MaxOps: size / (1 << 20)}
	if _, err := volbench.Run(ctx, tg, size, fill, 1); err != nil {
		return nil, err
	}
	for i, w := range volbench.Standard(d) {
		fmt.Fprintf(log, "running %s for %s\n", w.Name, d)
		r, err := volbench.Run(ctx, tg, size, w, uint64(i+2))
		if err != nil {
			return nil, err
		}
		results = append(results, r)
	}
	return results, nil
}

func printBench(out io.Writer, results []volbench.Result) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "WORKLOAD\tIOPS\tMB/s\tP50\tP99\t")
	for _, r := range results {
		fmt.Fprintf(w, "%s\t%.0f\t%.1f\t%s\t%s\t\n", r.Workload.Name, r.IOPS(), r.MBps(), r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond))
	}
	return w.Flush()
}
