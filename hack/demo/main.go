package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(run())
}

// Exit statuses: 0 the demo ran to the end; 1 a step failed; 2 bad usage; 3 a step is not
// available yet (a part of Cobalt is missing), so the demo stopped before it.
func run() int {
	if isControlPlaneStandIn(os.Args[0]) {
		err := execControlPlaneBinary(os.Args)
		fmt.Fprintln(os.Stderr, "cobalt-demo:", err)
		return 1
	}
	cmd := "up"
	if len(os.Args) > 1 {
		cmd = os.Args[1]
	}
	cfg, err := configFromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cobalt-demo:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// `make demo | tee log` and Ctrl-C: tee dies first, and a write to the broken pipe must not
	// kill the demo before it has cleaned up.
	signal.Ignore(syscall.SIGPIPE)
	switch cmd {
	case "up":
		err = up(ctx, cfg, os.Stdout)
	case "down":
		err = down(ctx, cfg, os.Stdout)
	default:
		fmt.Fprintf(os.Stderr, "usage: cobalt-demo [up|down]\n  up    run the demo (make demo)\n  down  stop a demo started from another shell (make demo-down)\n")
		return 2
	}
	if err == nil {
		return 0
	}
	fmt.Fprintln(os.Stderr, "cobalt-demo:", err)
	var unavailable *unavailableError
	if errors.As(err, &unavailable) {
		return 3
	}
	return 1
}
