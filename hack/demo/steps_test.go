package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRunnerReportsEachOutcome(t *testing.T) {
	ok := func(context.Context, sayFunc) error { return nil }
	for _, tc := range []struct {
		name    string
		steps   []step
		wantErr bool
		unavail bool
		want    []string
	}{
		{
			name:  "all steps pass",
			steps: []step{{title: "one", run: ok}, {title: "two", run: func(_ context.Context, say sayFunc) error { say("detail %d", 2); return nil }}},
			want:  []string{"==> [1/2] one\n    ok (0s)\n", "==> [2/2] two\n    detail 2\n    ok (0s)\n"},
		},
		{
			name: "a failing step names its logs and the steps that did not run",
			steps: []step{
				{title: "one", run: ok},
				{title: "two", logs: []string{"/x/two.log"}, run: func(context.Context, sayFunc) error { return errors.New("boom") }},
				{title: "three", run: ok},
			},
			wantErr: true,
			want:    []string{"==> [2/3] two\n    FAILED after 0s: boom\n    log: /x/two.log\n    all logs: /logs\n", "==> [3/3] three: not run\n"},
		},
		{
			name: "a skipped step says why and the next steps run",
			steps: []step{
				{title: "one", run: func(context.Context, sayFunc) error { return skipped("needs %s", "root") }},
				{title: "two", run: ok},
			},
			want: []string{"==> [1/2] one\n    SKIPPED: needs root\n==> [2/2] two\n    ok (0s)\n"},
		},
		{
			name: "an unavailable step says so",
			steps: []step{
				{title: "one", run: func(context.Context, sayFunc) error { return notAvailable("no %s yet", "daemon") }},
				{title: "two", run: ok},
			},
			wantErr: true,
			unavail: true,
			want:    []string{"==> [1/2] one\n    NOT AVAILABLE YET: no daemon yet\n", "==> [2/2] two: not run\n"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			fixed := time.Unix(0, 0)
			r := &runner{out: &out, logsDir: "/logs", now: func() time.Time { return fixed }}
			err := r.run(t.Context(), tc.steps)
			if (err != nil) != tc.wantErr {
				t.Fatalf("run error = %v, want error %v", err, tc.wantErr)
			}
			var u *unavailableError
			if errors.As(err, &u) != tc.unavail {
				t.Errorf("error %v: unavailable = %v, want %v", err, !tc.unavail, tc.unavail)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}
