// Command cobalt is the Cobalt command line for people: cluster status, streaming data into and
// out of volumes, and benchmarks of the volume API. It is also usable as a kubectl plugin:
// `make build` links bin/kubectl-cobalt to it, and `kubectl cobalt ...` runs it under that name.
// Help and usage texts name the command the way it was invoked (argv[0]).
//
// Every command that talks to a node daemon uses mutual TLS: a client certificate is issued in
// memory from the cluster CA Secret (--ca-secret, read with the current kubeconfig) or loaded from
// files (--tls-dir with ca.crt, tls.crt and tls.key).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCommand(commandName(os.Args[0])).ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
