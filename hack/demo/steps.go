package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// step is one named stage of the demo. logs names the files worth reading when it fails.
type step struct {
	title string
	logs  []string
	run   func(ctx context.Context, say sayFunc) error
}

// sayFunc prints a detail line under the current step.
type sayFunc func(format string, args ...any)

// unavailableError marks a step that cannot run because a part of Cobalt is not there yet.
type unavailableError struct{ reason string }

func (e *unavailableError) Error() string { return "not available yet: " + e.reason }

func notAvailable(format string, args ...any) error {
	return &unavailableError{reason: fmt.Sprintf(format, args...)}
}

// skippedError marks a step that cannot run on this machine (for example one that needs root).
// The demo goes on without it: the steps after it do not depend on it.
type skippedError struct{ reason string }

func (e *skippedError) Error() string { return "skipped: " + e.reason }

func skipped(format string, args ...any) error {
	return &skippedError{reason: fmt.Sprintf(format, args...)}
}

// runner runs steps in order, one line per step start and one per outcome.
type runner struct {
	out     io.Writer
	logsDir string
	now     func() time.Time
}

// run stops at the first step that fails or is unavailable, names it and the logs to read, and
// lists the steps that did not run. A skipped step says why and the run goes on.
func (r *runner) run(ctx context.Context, steps []step) error {
	for i, s := range steps {
		fmt.Fprintf(r.out, "==> [%d/%d] %s\n", i+1, len(steps), s.title)
		start := r.now()
		say := func(format string, args ...any) { fmt.Fprintf(r.out, "    "+format+"\n", args...) }
		err := s.run(ctx, say)
		elapsed := r.now().Sub(start).Round(100 * time.Millisecond)
		if err == nil {
			fmt.Fprintf(r.out, "    ok (%s)\n", elapsed)
			continue
		}
		var unavailable *unavailableError
		var skip *skippedError
		if errors.As(err, &skip) && ctx.Err() == nil {
			fmt.Fprintf(r.out, "    SKIPPED: %s\n", skip.reason)
			continue
		}
		if ctx.Err() != nil {
			fmt.Fprintf(r.out, "    INTERRUPTED after %s (Ctrl-C or make demo-down)\n", elapsed)
		} else if errors.As(err, &unavailable) {
			fmt.Fprintf(r.out, "    NOT AVAILABLE YET: %s\n", unavailable.reason)
		} else {
			fmt.Fprintf(r.out, "    FAILED after %s: %v\n", elapsed, err)
		}
		for _, l := range s.logs {
			fmt.Fprintf(r.out, "    log: %s\n", l)
		}
		fmt.Fprintf(r.out, "    all logs: %s\n", r.logsDir)
		for j, rest := range steps[i+1:] {
			fmt.Fprintf(r.out, "==> [%d/%d] %s: not run\n", i+j+2, len(steps), rest.title)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted during step %d/%d %q: %w", i+1, len(steps), s.title, ctx.Err())
		}
		return fmt.Errorf("step %d/%d %q: %w", i+1, len(steps), s.title, err)
	}
	return nil
}
