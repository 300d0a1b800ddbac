package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cobaltstore/cobalt/node-daemon/app"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/store"
)

// newFsckCommand checks a store that no daemon has mounted: it opens the device, mounts the store
// from the metadata region its label names (on the device, or on the separate metadata device
// given with --metadata-device; or, for a store made before label version 2, from its directory
// under the state directory, found by the label's UUID), replaying deferred writes as a restart
// would, and runs fsck. It exits non-zero on any inconsistency, and never repairs.
func newFsckCommand() *cobra.Command {
	var (
		stateDir, metaDevice string
		shallow              bool
	)
	cmd := &cobra.Command{
		Use:   "fsck DEVICE",
		Short: "Check the store on DEVICE (not mounted by a running daemon); exit non-zero on any inconsistency",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return fsck(cmd.Context(), cmd.OutOrStdout(), args[0], metaDevice, stateDir, !shallow)
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", app.DefaultConfig().StateDir,
		"the node daemon's state directory, read only for a store made before label version 2 (its metadata is under stores/<uuid>/db); a store with its metadata on the device needs none")
	cmd.Flags().StringVar(&metaDevice, "metadata-device", "",
		"the separate metadata device of a store made with one (its label says so); its label must name the same store")
	cmd.Flags().BoolVar(&shallow, "shallow", false, "check metadata and space only, without reading and checksumming every data block")
	return cmd
}

func fsck(ctx context.Context, out io.Writer, device, metaDevice, stateDir string, deep bool) (err error) {
	dev, err := blockdev.Open(device, blockdev.Options{})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, dev.Close()) }()
	label, err := blockdev.ReadLabel(dev)
	if err != nil {
		return fmt.Errorf("%s carries no Cobalt store label: %w", device, err)
	}
	id := label.UUIDString()
	var opts store.Options
	switch {
	case label.MetadataDevice:
		return fmt.Errorf("%s is the metadata device of store %s: give that store's data device, with --metadata-device %s", device, id, device)
	case label.MetaOnSeparateDevice && metaDevice == "":
		return fmt.Errorf("store %s on %s keeps its metadata on a separate device: give it with --metadata-device", id, device)
	case metaDevice != "":
		md, err := blockdev.Open(metaDevice, blockdev.Options{})
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, md.Close()) }()
		opts.MetadataDevice = md
	}
	legacyDBDir := ""
	if !label.MetaOnDevice() && !label.MetaOnSeparateDevice {
		if stateDir == "" {
			return fmt.Errorf("store %s on %s keeps its metadata in the node daemon's state directory (label version %d): give --state-dir", id, device, label.Version)
		}
		legacyDBDir = filepath.Join(stateDir, "stores", id, "db")
	}
	st, err := store.Open(ctx, dev, legacyDBDir, opts)
	if err != nil {
		return fmt.Errorf("mount store %s on %s for fsck: %w", id, device, err)
	}
	defer func() { err = errors.Join(err, st.Close()) }()
	fmt.Fprintf(out, "store %s on %s: metadata in %s\n", id, device, st.MetadataLocation())
	cluster := "none (label version " + strconv.FormatUint(uint64(label.Version), 10) + ": adopted by the first cluster whose node daemon mounts it)"
	if !label.MetaOnDevice() && !label.MetaOnSeparateDevice && !label.HasCluster() {
		cluster = "none (label version 1: tied to the node whose state directory holds its metadata)"
	}
	if label.HasCluster() {
		cluster = label.ClusterIDString() + " (the UID of the StorageCluster that made it)"
	}
	fmt.Fprintf(out, "store %s on %s: cluster %s\n", id, device, cluster)
	rep, err := st.Fsck(ctx, deep)
	if err != nil {
		return fmt.Errorf("fsck of store %s: %w", id, err)
	}
	fmt.Fprintf(out, "store %s on %s: deep=%v collections=%d objects=%d extents=%d referenced=%d free=%d deferred-replayed=%d\n",
		id, device, rep.Deep, rep.Collections, rep.Objects, rep.Extents, rep.ReferencedBytes, rep.FreeBytes, st.Metrics().DeferredReplayed)
	if len(rep.Errors) > 0 || rep.LeakedBytes > 0 || rep.CorruptBlocks > 0 {
		return fmt.Errorf("store %s is inconsistent: %d errors, %d bytes leaked, %d corrupt blocks: %s",
			id, len(rep.Errors), rep.LeakedBytes, rep.CorruptBlocks, strings.Join(rep.Errors, "; "))
	}
	fmt.Fprintln(out, "fsck: clean")
	return nil
}
