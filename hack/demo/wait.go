package main

import (
	"context"
	"fmt"
	"time"
)

// checkFunc reports whether a wait is over, and a one-line status to show while it is not.
type checkFunc func(ctx context.Context) (done bool, status string, err error)

// waitUntil polls check every interval until it is done, the timeout passes, or one of the
// watched processes exits. Each new status is printed once with say, so a slow step shows what it
// is waiting for.
func waitUntil(ctx context.Context, say sayFunc, what string, timeout, interval time.Duration, watched []*proc, check checkFunc) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	for {
		for _, p := range watched {
			if p == nil {
				continue
			}
			if done, err := p.exited(); done {
				return fmt.Errorf("while waiting for %s: %w", what, err)
			}
		}
		done, status, err := check(ctx)
		if err != nil && ctx.Err() == nil {
			status = err.Error()
		}
		if done && err == nil {
			return nil
		}
		if status != "" && status != last {
			say("waiting for %s: %s", what, status)
			last = status
		}
		select {
		case <-ctx.Done():
			if last == "" {
				last = "no status"
			}
			return fmt.Errorf("%s: not done after %s; last status: %s", what, timeout, last)
		case <-time.After(interval):
		}
	}
}
