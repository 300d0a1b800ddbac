package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestProfilerAround(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name  string
		p     profiler
		files []string
		err   string
	}{
		{name: "none", p: profiler{}},
		{name: "all", p: profiler{cpu: filepath.Join(dir, "cpu"), block: filepath.Join(dir, "block"), mutex: filepath.Join(dir, "mutex"), trace: filepath.Join(dir, "trace")},
			files: []string{"cpu.w.prof", "block.w.prof", "mutex.w.prof", "trace.w.trace"}},
		{name: "trace-only", p: profiler{trace: filepath.Join(dir, "t2")}, files: []string{"t2.w.trace"}},
		{name: "block-only", p: profiler{block: filepath.Join(dir, "b2")}, files: []string{"b2.w.prof"}},
		{name: "unwritable", p: profiler{cpu: filepath.Join(dir, "no", "cpu"), block: filepath.Join(dir, "no", "block")}, err: "cpu profile"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.p.enabled() != (c.name != "none") {
				t.Fatalf("enabled() = %v", c.p.enabled())
			}
			ran := false
			err := c.p.around("w", func() {
				ran = true
				// Block on a mutex long enough for the block and mutex profiles to record it.
				var mu sync.Mutex
				mu.Lock()
				go func() { time.Sleep(20 * time.Millisecond); mu.Unlock() }()
				mu.Lock()
			})
			if !ran {
				t.Fatal("workload did not run")
			}
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "block profile") {
					t.Fatalf("err %v, want both the %s and the block profile's failure", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range c.files {
				st, err := os.Stat(filepath.Join(dir, f))
				if err != nil || st.Size() == 0 {
					t.Errorf("profile %s: %v", f, err)
				}
			}
			// Block and mutex profiling are off again after the workload.
			if runtime.SetMutexProfileFraction(-1) != 0 {
				t.Error("mutex profiling left on")
			}
		})
	}
}
