package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func sleepPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatalf("sleep: %v", err)
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return real
}

func TestStartProcessStopAndChildren(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "sleep.log")
	p, err := startProcess("sleeper", sleepPath(t), []string{"60"}, nil, logPath)
	if err != nil {
		t.Fatal(err)
	}
	kids, err := childrenOf(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(kids, p.cmd.Process.Pid) {
		t.Errorf("childrenOf(self) = %v, lacks the sleeper %d", kids, p.cmd.Process.Pid)
	}
	if exe := processExe(p.cmd.Process.Pid); exe != sleepPath(t) {
		t.Errorf("processExe = %q, want %q", exe, sleepPath(t))
	}
	if done, _ := p.exited(); done {
		t.Fatal("sleeper exited early")
	}
	if err := p.stop(5 * time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if done, err := p.exited(); !done || !strings.Contains(err.Error(), "sleeper exited") {
		t.Errorf("after stop: exited = %v, %v", done, err)
	}
	log, _ := os.ReadFile(logPath)
	if !strings.Contains(string(log), "sleep 60") {
		t.Errorf("log does not record the command line: %q", log)
	}
}

func TestStopRecordedLeavesOtherExecutablesAlone(t *testing.T) {
	p, err := startProcess("sleeper", sleepPath(t), []string{"60"}, nil, filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.stop(5 * time.Second) })
	// A recorded PID whose executable is not the recorded one is someone else's process now.
	if err := stopRecorded(t.Context(), Process{Name: "x", PID: p.cmd.Process.Pid, Exe: "/not/this"}, time.Second); err != nil {
		t.Fatal(err)
	}
	if done, _ := p.exited(); done {
		t.Fatal("stopRecorded stopped a process whose executable did not match")
	}
	if err := stopRecorded(t.Context(), Process{Name: "x", PID: p.cmd.Process.Pid, Exe: sleepPath(t)}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		t.Fatal("stopRecorded did not stop the matching process")
	}
}

func TestWaitUntilStopsWhenAWatchedProcessExits(t *testing.T) {
	p, err := startProcess("short", sleepPath(t), []string{"0"}, nil, filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	<-p.done
	say := func(string, ...any) {}
	err = waitUntil(t.Context(), say, "something", time.Minute, 10*time.Millisecond, []*proc{p}, func(context.Context) (bool, string, error) {
		return false, "never", nil
	})
	if err == nil || !strings.Contains(err.Error(), "short exited") {
		t.Fatalf("waitUntil = %v, want an error naming the exited process", err)
	}
}
