package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cobaltstore/cobalt/node-daemon/client"
	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
	"github.com/cobaltstore/cobalt/node-daemon/volbench"
)

// volumeTarget drives a volume through the gRPC volume API.
type volumeTarget struct {
	c   *client.Client
	ref *nodepb.VolumeRef
}

func (v volumeTarget) WriteAt(ctx context.Context, off int64, p []byte) error {
	_, err := v.c.Volumes.Write(ctx, &nodepb.WriteRequest{Ref: v.ref, Offset: off, Data: p})
	return err
}

func (v volumeTarget) ReadAt(ctx context.Context, off, n int64) ([]byte, error) {
	resp, err := v.c.Volumes.Read(ctx, &nodepb.ReadRequest{Ref: v.ref, Offset: off, Length: n})
	return resp.GetData(), err
}

func newBenchCommand(g *globalOptions) *cobra.Command {
	var (
		t        targetOptions
		size     int64
		duration time.Duration
	)
	cmd := &cobra.Command{
		Use:   "bench --addr HOST:PORT --store UUID [--size BYTES] [--duration D]",
		Short: "Benchmark the volume API over mTLS: 4K random write/read at QD1 and QD16, 1M sequential write",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			tg, err := t.resolve(cmd.Context(), g, args)
			if err != nil {
				return err
			}
			defer tg.Close()
			results, err := runVolumeBench(cmd.Context(), tg.client, tg.ref.GetStoreUuid(), size, duration, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			return printBench(cmd.OutOrStdout(), results)
		},
	}
	t.addFlags(cmd)
	cmd.Flags().Int64Var(&size, "size", 1<<30, "size of the benchmark volume and region in bytes")
	cmd.Flags().DurationVar(&duration, "duration", 10*time.Second, "duration of each workload")
	return cmd
}

// runVolumeBench creates a scratch volume on the store, fills it (so reads hit data), runs the
// standard workloads and deletes the volume.
func runVolumeBench(ctx context.Context, c *client.Client, store string, size int64, d time.Duration, log io.Writer) (results []volbench.Result, err error) {
	var suffix [4]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return nil, err
	}
	ref := &nodepb.VolumeRef{StoreUuid: store, VolumeId: "bench-" + hex.EncodeToString(suffix[:])}
	if _, err := c.Volumes.CreateVolume(ctx, &nodepb.CreateVolumeRequest{Ref: ref, SizeBytes: size}); err != nil {
		return nil, fmt.Errorf("create benchmark volume: %w", err)
	}
	defer func() {
		// Clean up even if ctx was cancelled.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
		defer cancel()
		if _, derr := c.Volumes.DeleteVolume(dctx, &nodepb.DeleteVolumeRequest{Ref: ref}); derr != nil && err == nil {
			err = fmt.Errorf("delete benchmark volume: %w", derr)
		}
	}()
	tg := volumeTarget{c: c, ref: ref}
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
