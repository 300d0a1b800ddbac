package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
)

const (
	// blockProfileRate records every blocking event of 10µs or more and a proportional sample of
	// shorter ones (runtime.SetBlockProfileRate), so the profile costs little at 10^5 commits/s.
	blockProfileRate = 10_000
	// mutexProfileFraction records one contended mutex event in this many.
	mutexProfileFraction = 10
)

// profiler writes the profiles asked for on the command line around each store workload. Each
// field is a path prefix ("" for none); a workload's profile goes to <prefix>.<workload>.prof.
type profiler struct {
	cpu, block, mutex, trace string
}

func (p profiler) enabled() bool {
	return p.cpu != "" || p.block != "" || p.mutex != "" || p.trace != ""
}

// around runs run (the workload name) under the profiles asked for: a CPU profile and an
// execution trace (go tool trace: where goroutines wait for the scheduler) of run alone, and the
// block and mutex profiles, recorded only while run runs and written after it. The
// runtime's block and mutex profiles cannot be reset, so those files are cumulative since the first
// profiled workload (`go tool pprof -diff_base` the previous workload's file to see one alone).
func (p profiler) around(name string, run func()) error {
	if p.block != "" {
		runtime.SetBlockProfileRate(blockProfileRate)
	}
	if p.mutex != "" {
		runtime.SetMutexProfileFraction(mutexProfileFraction)
	}
	var err error
	body := run
	if p.trace != "" {
		body = func() { err = executionTrace(p.trace+"."+name+".trace", run) }
	}
	if p.cpu != "" {
		err = errors.Join(cpuProfile(p.cpu+"."+name+".prof", body), err)
	} else {
		body()
	}
	if p.block != "" {
		runtime.SetBlockProfileRate(0)
		err = errors.Join(err, writeProfile("block", p.block+"."+name+".prof"))
	}
	if p.mutex != "" {
		runtime.SetMutexProfileFraction(0)
		err = errors.Join(err, writeProfile("mutex", p.mutex+"."+name+".prof"))
	}
	return err
}

// cpuProfile runs run under a CPU profile written to path; run runs even if profiling fails.
func cpuProfile(path string, run func()) error {
	f, err := os.Create(path)
	if err != nil {
		run()
		return fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		run()
		return errors.Join(fmt.Errorf("cpu profile: %w", err), f.Close())
	}
	run()
	pprof.StopCPUProfile()
	if err := f.Close(); err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	return nil
}

// writeProfile writes the runtime profile called name (block, mutex) to path.
func writeProfile(name, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("%s profile: %w", name, err)
	}
	if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
		return errors.Join(fmt.Errorf("%s profile %s: %w", name, path, err), f.Close())
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%s profile %s: %w", name, path, err)
	}
	return nil
}

// executionTrace runs run under an execution trace written to path; run runs even if tracing
// fails.
func executionTrace(path string, run func()) error {
	f, err := os.Create(path)
	if err != nil {
		run()
		return fmt.Errorf("trace: %w", err)
	}
	if err := trace.Start(f); err != nil {
		run()
		return errors.Join(fmt.Errorf("trace: %w", err), f.Close())
	}
	run()
	trace.Stop()
	if err := f.Close(); err != nil {
		return fmt.Errorf("trace: %w", err)
	}
	return nil
}
