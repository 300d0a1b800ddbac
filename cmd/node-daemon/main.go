// Command node-daemon is Cobalt's per-node daemon, run by the StorageCluster's DaemonSet: it
// prepares the node's devices into stores and serves them over mutual-TLS gRPC (package
// node-daemon/app). Its flags name its StorageCluster, node, addresses, state directory and
// intervals; the devices and engine settings it reads from the StorageCluster's spec at start,
// and it exits non-zero when it cannot. `node-daemon health` is its exec probe.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/cobaltstore/cobalt/node-daemon/app"
	"github.com/cobaltstore/cobalt/node-daemon/client"
	"github.com/cobaltstore/cobalt/node-daemon/engine"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	cfg := app.DefaultConfig()
	var buffered bool
	zapOpts := zap.Options{}
	root := &cobra.Command{
		Use:           "node-daemon",
		Short:         "Cobalt node daemon: prepares devices into stores and serves them",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := zap.New(zap.UseFlagOptions(&zapOpts))
			ctrl.SetLogger(log)
			// Goroutines blocked in device pread/pwrite hold a P: with as many Ps as cores the
			// ones ready to issue the next I/O wait behind them (blockdev.MinIOProcs). An
			// explicit GOMAXPROCS in the environment wins.
			if os.Getenv("GOMAXPROCS") == "" {
				blockdev.RaiseGOMAXPROCS()
			}
			log.Info("starting", "GOMAXPROCS", runtime.GOMAXPROCS(0), "cpus", runtime.NumCPU())
			restConfig, err := ctrl.GetConfig()
			if err != nil {
				return fmt.Errorf("kubernetes config: %w", err)
			}
			// The Go collector follows the memory targets of the mounted stores (one budget for
			// the process, whatever engines the manager builds); GOGC or GOMEMLIMIT in the
			// environment win.
			gc := engine.NewGCBudget()
			newEngine := func(ec app.EngineConfig) app.Engine {
				return engine.New(engine.Settings{EngineConfig: ec, Buffered: buffered, GC: gc})
			}
			// SIGTERM and SIGINT cancel the context: the daemon stops accepting calls, lets
			// in-flight ones finish and unmounts its stores before returning.
			ctx := ctrl.SetupSignalHandler()
			// The devices and engine settings come from the StorageCluster; without it the
			// daemon exits non-zero and its DaemonSet restarts it (with back-off).
			mgr, err := app.NewManager(ctx, restConfig, &cfg, newEngine, log)
			if err != nil {
				log.Error(err, "cannot start the node daemon")
				return err
			}
			return mgr.Start(ctx)
		},
	}
	cfg.BindFlags(root.Flags())
	logFlags := flag.NewFlagSet("log", flag.ContinueOnError)
	zapOpts.BindFlags(logFlags)
	root.Flags().AddGoFlagSet(logFlags)
	root.Flags().BoolVar(&buffered, "buffered-io", false, "open devices without O_DIRECT (development on filesystems that refuse it)")
	root.AddCommand(newHealthCommand(), newFsckCommand())
	return root
}

// newHealthCommand checks the daemon's grpc.health.v1 service on its local unix socket; it exits
// non-zero unless the daemon is SERVING. Kubernetes runs it as the liveness/readiness exec probe.
func newHealthCommand() *cobra.Command {
	var (
		socket  string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Exit 0 if the node daemon on this node is serving",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			if err := client.CheckHealthSocket(ctx, socket); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "SERVING")
			return nil
		},
	}
	cmd.Flags().StringVar(&socket, "socket", filepath.Join(app.DefaultConfig().StateDir, "node-daemon.sock"), "the daemon's health socket")
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "how long to wait for an answer")
	return cmd
}
