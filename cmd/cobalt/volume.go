package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
)

func newVolumeCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "volume", Short: "Create volumes and stream data into and out of them"}
	cmd.AddCommand(newVolumeCreate(g), newVolumeDelete(g), newVolumeList(g), newVolumeWrite(g), newVolumeRead(g))
	return cmd
}

func newVolumeCreate(g *globalOptions) *cobra.Command {
	var (
		t    targetOptions
		size int64
	)
	cmd := &cobra.Command{
		Use:   "create --addr HOST:PORT --store UUID --volume-id ID --size BYTES",
		Short: "Create a volume directly on a node daemon (Volume objects are created with kubectl)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			tg, err := t.resolve(cmd.Context(), g, args)
			if err != nil {
				return err
			}
			defer tg.Close()
			if err := tg.needVolume(); err != nil {
				return err
			}
			resp, err := tg.client.Volumes.CreateVolume(cmd.Context(), &nodepb.CreateVolumeRequest{Ref: tg.ref, SizeBytes: size})
			if err != nil {
				return fmt.Errorf("create volume: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "volume %s created on store %s: %d bytes\n", tg.ref.GetVolumeId(), tg.ref.GetStoreUuid(), resp.GetVolume().GetSizeBytes())
			return nil
		},
	}
	t.addFlags(cmd)
	cmd.Flags().Int64Var(&size, "size", 0, "volume size in bytes (a multiple of 4096)")
	return cmd
}

func newVolumeDelete(g *globalOptions) *cobra.Command {
	var t targetOptions
	cmd := &cobra.Command{
		Use:   "delete --addr HOST:PORT --store UUID --volume-id ID",
		Short: "Delete a volume directly on a node daemon",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			tg, err := t.resolve(cmd.Context(), g, args)
			if err != nil {
				return err
			}
			defer tg.Close()
			if err := tg.needVolume(); err != nil {
				return err
			}
			if _, err := tg.client.Volumes.DeleteVolume(cmd.Context(), &nodepb.DeleteVolumeRequest{Ref: tg.ref}); err != nil {
				return fmt.Errorf("delete volume: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "volume %s deleted\n", tg.ref.GetVolumeId())
			return nil
		},
	}
	t.addFlags(cmd)
	return cmd
}

func newVolumeList(g *globalOptions) *cobra.Command {
	var t targetOptions
	cmd := &cobra.Command{
		Use:   "list --addr HOST:PORT --store UUID",
		Short: "List the volumes of a store as its node daemon sees them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			tg, err := t.resolve(cmd.Context(), g, args)
			if err != nil {
				return err
			}
			defer tg.Close()
			resp, err := tg.client.Volumes.ListVolumes(cmd.Context(), &nodepb.ListVolumesRequest{StoreUuid: tg.ref.GetStoreUuid()})
			if err != nil {
				return fmt.Errorf("list volumes: %w", err)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "VOLUME ID\tSIZE\tALLOCATED\tSTRIPE")
			for _, v := range resp.GetVolumes() {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", v.GetRef().GetVolumeId(), humanBytes(v.GetSizeBytes()), humanBytes(v.GetAllocatedBytes()), humanBytes(v.GetStripeSizeBytes()))
			}
			return w.Flush()
		},
	}
	t.addFlags(cmd)
	return cmd
}

func newVolumeWrite(g *globalOptions) *cobra.Command {
	var (
		t      targetOptions
		offset int64
		input  string
	)
	cmd := &cobra.Command{
		Use:   "write [VOLUME] [-f FILE|-] [--offset BYTES]",
		Short: "Stream a file or stdin into a volume; prints the bytes written and their SHA-256",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tg, err := t.resolve(cmd.Context(), g, args)
			if err != nil {
				return err
			}
			defer tg.Close()
			if err := tg.needVolume(); err != nil {
				return err
			}
			in := cmd.InOrStdin()
			if input != "-" {
				f, err := os.Open(input)
				if err != nil {
					return fmt.Errorf("open input: %w", err)
				}
				defer f.Close()
				in = f
			}
			sum := sha256.New()
			n, err := tg.client.WriteFrom(cmd.Context(), tg.ref, offset, io.TeeReader(in, sum))
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %d bytes at offset %d, sha256 %s\n", n, offset, hexSum(sum))
			return nil
		},
	}
	t.addFlags(cmd)
	cmd.Flags().Int64Var(&offset, "offset", 0, "byte offset in the volume")
	cmd.Flags().StringVarP(&input, "file", "f", "-", "input file, - for stdin")
	return cmd
}

func newVolumeRead(g *globalOptions) *cobra.Command {
	var (
		t              targetOptions
		offset, length int64
		output         string
	)
	cmd := &cobra.Command{
		Use:   "read [VOLUME] --length BYTES [--offset BYTES] [-o FILE|-]",
		Short: "Stream a range of a volume to a file or stdout; prints the bytes read and their SHA-256",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tg, err := t.resolve(cmd.Context(), g, args)
			if err != nil {
				return err
			}
			defer tg.Close()
			if err := tg.needVolume(); err != nil {
				return err
			}
			if length <= 0 {
				info, err := tg.client.Volumes.GetVolume(cmd.Context(), &nodepb.GetVolumeRequest{Ref: tg.ref})
				if err != nil {
					return fmt.Errorf("get volume: %w", err)
				}
				length = info.GetVolume().GetSizeBytes() - offset
			}
			out := cmd.OutOrStdout()
			if output != "-" {
				f, err := os.Create(output)
				if err != nil {
					return fmt.Errorf("create output: %w", err)
				}
				defer f.Close()
				out = f
			}
			sum := sha256.New()
			n, err := tg.client.ReadTo(cmd.Context(), tg.ref, offset, length, io.MultiWriter(out, sum))
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "read %d bytes at offset %d, sha256 %s\n", n, offset, hexSum(sum))
			return nil
		},
	}
	t.addFlags(cmd)
	cmd.Flags().Int64Var(&offset, "offset", 0, "byte offset in the volume")
	cmd.Flags().Int64Var(&length, "length", 0, "bytes to read (default: to the end of the volume)")
	cmd.Flags().StringVarP(&output, "output", "o", "-", "output file, - for stdout")
	return cmd
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// humanBytes formats a byte count with a binary unit.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
