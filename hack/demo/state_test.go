package main

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestStateFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	f, err := newStateFile(path, State{PID: 42, Exe: "/bin/demo", Mode: "local"})
	if err != nil {
		t.Fatal(err)
	}
	p := Process{Name: "operator", PID: 7, Exe: "/bin/manager"}
	l := LoopDevice{Device: "/dev/loop9", BackingFile: "/x/img"}
	if err := f.update(func(s *State) { s.Processes = append(s.Processes, p); s.LoopDevices = append(s.LoopDevices, l) }); err != nil {
		t.Fatal(err)
	}
	got, err := loadState(path)
	if err != nil {
		t.Fatal(err)
	}
	want := State{PID: 42, Exe: "/bin/demo", Mode: "local", Processes: []Process{p}, LoopDevices: []LoopDevice{l}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("loaded %+v, want %+v", got, want)
	}
	if err := f.remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := loadState(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after remove, loadState error = %v, want not exist", err)
	}
}

func TestLoadStateRejectsGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	if err := os.WriteFile(path, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadState(path); err == nil {
		t.Fatal("loadState accepted a corrupt state file")
	}
}
