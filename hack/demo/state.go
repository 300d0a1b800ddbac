package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Process is a process the demo started, recorded so `down` can stop it if the demo cannot.
type Process struct {
	Name string `json:"name"`
	PID  int    `json:"pid"`
	// Exe is the absolute path of its executable, compared with /proc/PID/exe before signaling.
	Exe string `json:"exe"`
	Log string `json:"log,omitempty"`
}

// LoopDevice is a loop device the demo attached to BackingFile.
type LoopDevice struct {
	Device      string `json:"device"`
	BackingFile string `json:"backingFile"`
}

// KubeObject is an object the demo created in a cluster it does not own (DEMO_USE_KUBECONFIG=1),
// deleted again on exit.
type KubeObject struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// State is what a running demo has set up. It is saved after every change.
type State struct {
	PID int `json:"pid"`
	// Exe is the demo's own executable, so `down` signals only a live demo, not a recycled PID.
	Exe         string       `json:"exe"`
	Mode        string       `json:"mode"`
	Kubeconfig  string       `json:"kubeconfig,omitempty"`
	Processes   []Process    `json:"processes,omitempty"`
	LoopDevices []LoopDevice `json:"loopDevices,omitempty"`
	Objects     []KubeObject `json:"objects,omitempty"`
}

// stateFile guards the state file; every mutation rewrites it atomically.
type stateFile struct {
	path string
	mu   sync.Mutex
	st   State // guarded by mu
}

func newStateFile(path string, st State) (*stateFile, error) {
	f := &stateFile{path: path, st: st}
	return f, f.saveLocked()
}

// loadState reads the state file; os.ErrNotExist when there is none.
func loadState(path string) (State, error) {
	var st State
	data, err := os.ReadFile(path)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("parse demo state %s: %w", path, err)
	}
	return st, nil
}

func (f *stateFile) update(fn func(*State)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.st)
	return f.saveLocked()
}

// saveLocked writes the state to a temporary file and renames it over the old one.
// REQUIRES: f.mu held (or f not yet shared).
func (f *stateFile) saveLocked() error {
	data, err := json.MarshalIndent(f.st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode demo state: %w", err)
	}
	tmp := f.path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write demo state: %w", err)
	}
	if err := os.Rename(tmp, f.path); err != nil {
		return fmt.Errorf("write demo state: %w", err)
	}
	return nil
}

// remove deletes the state file once everything in it has been undone.
func (f *stateFile) remove() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := os.Remove(f.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove demo state: %w", err)
	}
	return nil
}

// demoPaths are the files and directories of one demo under its state directory.
type demoPaths struct {
	dir        string // .demo
	state      string // .demo/state.json
	logs       string // .demo/logs
	kubeconfig string // .demo/kubeconfig
	// nodeKubeconfig authenticates the node daemon as its ServiceAccount (.demo/node-daemon.kubeconfig).
	nodeKubeconfig string
	// operatorKubeconfig authenticates the operator as its ServiceAccount (.demo/operator.kubeconfig).
	operatorKubeconfig string
	controlPlane       string // .demo/controlplane (etcd data, API server certificates)
	nodeState          string // .demo/node (the node daemon's state directory)
	manifests          string // .demo/manifests (what the demo applies, to read or re-apply)
	data               string // .demo/data (the bytes written through the volume API and read back)
	// kubelet is the kubelet root directory the demo plays kubelet in (.demo/kubelet): the node
	// plugin's socket, the plugin registry, and the staging and target paths of CSI calls.
	kubelet string
	// csiSocket is the CSI controller plugin's socket (.demo/csi.sock).
	csiSocket string
}

func newDemoPaths(dir string) (demoPaths, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return demoPaths{}, fmt.Errorf("demo state directory %s: %w", dir, err)
	}
	return demoPaths{
		dir:                abs,
		state:              filepath.Join(abs, "state.json"),
		logs:               filepath.Join(abs, "logs"),
		kubeconfig:         filepath.Join(abs, "kubeconfig"),
		nodeKubeconfig:     filepath.Join(abs, "node-daemon.kubeconfig"),
		operatorKubeconfig: filepath.Join(abs, "operator.kubeconfig"),
		controlPlane:       filepath.Join(abs, "controlplane"),
		nodeState:          filepath.Join(abs, "node"),
		manifests:          filepath.Join(abs, "manifests"),
		data:               filepath.Join(abs, "data"),
		kubelet:            filepath.Join(abs, "kubelet"),
		csiSocket:          filepath.Join(abs, "csi.sock"),
	}, nil
}
