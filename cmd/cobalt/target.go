package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cobaltstore/cobalt/node-daemon/client"
	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
)

// targetOptions say which daemon, store and volume a command works on: either a Volume object's
// name (resolved through the API server) or the daemon address, store UUID and volume ID directly.
type targetOptions struct {
	addr     string
	store    string
	volumeID string
}

func (t *targetOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&t.addr, "addr", "", "node daemon address host:port (instead of resolving a Volume)")
	f.StringVar(&t.store, "store", "", "store UUID (with --addr)")
	f.StringVar(&t.volumeID, "volume-id", "", "volume ID on the store (with --addr)")
}

// target is a resolved volume: a connected client and the volume's reference.
type target struct {
	client *client.Client
	ref    *nodepb.VolumeRef
}

// resolve connects to the daemon serving the volume named by args[0] (a Volume in the namespace)
// or by the --addr/--store/--volume-id flags.
func (t *targetOptions) resolve(ctx context.Context, g *globalOptions, args []string) (*target, error) {
	addr, store, id := t.addr, t.store, t.volumeID
	switch {
	case len(args) == 1 && addr == "":
		var err error
		if addr, store, id, err = resolveVolume(ctx, g, args[0]); err != nil {
			return nil, err
		}
	case len(args) == 0 && addr != "" && store != "":
	default:
		return nil, errors.New("name a Volume, or give --addr and --store (and --volume-id for volume commands)")
	}
	tlsConfig, err := g.clientTLS(ctx)
	if err != nil {
		return nil, err
	}
	c, err := client.Dial(addr, tlsConfig)
	if err != nil {
		return nil, err
	}
	return &target{client: c, ref: &nodepb.VolumeRef{StoreUuid: store, VolumeId: id}}, nil
}

func (t *target) Close() error { return t.client.Close() }

// needVolume checks that a volume ID was given.
func (t *target) needVolume() error {
	if t.ref.GetVolumeId() == "" {
		return fmt.Errorf("a volume is required (--volume-id)")
	}
	return nil
}
