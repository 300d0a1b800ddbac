package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestCSIStepsSkipWithoutTheNodePlugin: without root every CSI step says why it is skipped, and
// the demo goes on to the step after them.
func TestCSIStepsSkipWithoutTheNodePlugin(t *testing.T) {
	d := &demo{csiSkip: "the CSI node plugin needs root"}
	steps := d.csiSteps(func(names ...string) []string { return names })
	if len(steps) != 8 {
		t.Fatalf("%d CSI steps, want 8", len(steps))
	}
	for _, s := range steps {
		var skip *skippedError
		if err := s.run(t.Context(), func(string, ...any) {}); !errors.As(err, &skip) || skip.reason != d.csiSkip {
			t.Errorf("step %q: %v, want skipped because %q", s.title, err, d.csiSkip)
		}
	}
	var out strings.Builder
	r := &runner{out: &out, logsDir: "/logs", now: time.Now}
	ran := false
	all := append(steps, step{title: "show the cluster", run: func(context.Context, sayFunc) error { ran = true; return nil }})
	if err := r.run(t.Context(), all); err != nil || !ran {
		t.Fatalf("run: %v, last step ran %v\n%s", err, ran, out.String())
	}
	if got := strings.Count(out.String(), "SKIPPED: the CSI node plugin needs root"); got != 8 {
		t.Errorf("%d SKIPPED lines, want 8:\n%s", got, out.String())
	}
}
