package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cobaltstore/cobalt/test/testenv/assets"
)

// down stops a demo started from another shell: it asks a live demo to clean up after itself
// (SIGTERM, as Ctrl-C would), then undoes whatever is still recorded.
func down(ctx context.Context, cfg config, out io.Writer) error {
	paths, err := newDemoPaths(cfg.stateDir)
	if err != nil {
		return err
	}
	st, err := loadState(paths.state)
	if errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(out, "No demo state in %s: nothing to stop.\n", paths.dir)
		return nil
	}
	if err != nil {
		return err
	}
	if st.Exe != "" && processExe(st.PID) == st.Exe {
		fmt.Fprintf(out, "==> Asking the demo (pid %d) to stop and clean up\n", st.PID)
		if err := syscall.Kill(st.PID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("signal the demo (pid %d): %w", st.PID, err)
		}
		deadline := time.Now().Add(4 * time.Minute)
		for processExe(st.PID) == st.Exe && time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(300 * time.Millisecond):
			}
		}
		if processExe(st.PID) == st.Exe {
			fmt.Fprintf(out, "    the demo did not exit within 4 minutes; stopping what it started\n")
		}
		st, err = loadState(paths.state)
		if errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(out, "    the demo cleaned up; logs are in %s\n", paths.logs)
			return nil
		}
		if err != nil {
			return err
		}
	}
	return undoLeftovers(ctx, paths, st, out)
}

// undoLeftovers undoes what a demo that can no longer clean up recorded, newest first, and when
// all of it is undone removes every file of the demo but its logs, and the state file last.
func undoLeftovers(ctx context.Context, paths demoPaths, st State, out io.Writer) error {
	fmt.Fprintf(out, "==> Undoing what demo pid %d left behind\n", st.PID)
	var errs []error
	kc := kubectl{bin: filepath.Join(envOr("ENVTEST_ASSETS", assets.InRepo(".")), "kubectl"), kubeconfig: paths.kubeconfig, logPath: filepath.Join(paths.logs, "kubectl.log")}
	if st.Mode == "kubeconfig" {
		for i := len(st.Objects) - 1; i >= 0; i-- {
			o := st.Objects[i]
			if err := deleteObject(ctx, kc, o); err != nil {
				errs = append(errs, err)
				continue
			}
			fmt.Fprintf(out, "    deleted %s %s\n", o.Kind, o.Name)
		}
	}
	for i := len(st.Processes) - 1; i >= 0; i-- {
		p := st.Processes[i]
		if err := stopRecorded(ctx, p, 15*time.Second); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(out, "    %s (pid %d) is not running\n", p.Name, p.PID)
	}
	// The node daemon is stopped: undo what its CSI node plugin left (mounts under the demo's
	// kubelet directory, loop devices on its FUSE files) before its directories are removed.
	done, err := cleanupCSIHost(ctx, paths.kubelet, paths.nodeState)
	for _, d := range done {
		fmt.Fprintf(out, "    %s\n", d)
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("CSI node plugin leftovers: %w", err))
	} else {
		fmt.Fprintf(out, "    nothing is mounted under %s or %s\n", paths.kubelet, paths.nodeState)
	}
	for _, l := range st.LoopDevices {
		if err := detachLoop(ctx, l); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(out, "    %s is detached\n", l.Device)
		if err := os.Remove(l.BackingFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove %s: %w", l.BackingFile, err))
		}
	}
	remove := []string{paths.controlPlane, paths.nodeKubeconfig, paths.operatorKubeconfig, paths.csiSocket}
	if len(errs) == 0 {
		remove = append(remove, paths.nodeState) // never while the CSI clean-up failed: it may hold mounts
	}
	if st.Mode == "local" {
		remove = append(remove, paths.kubeconfig) // its API server is gone
	}
	for _, p := range remove {
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", p, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("some of the demo could not be undone (state kept in %s): %w", paths.state, errors.Join(errs...))
	}
	if err := removeAllButLogs(paths); err != nil {
		return fmt.Errorf("remove the demo's files (state kept in %s): %w", paths.state, err)
	}
	if err := os.Remove(paths.state); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", paths.state, err)
	}
	fmt.Fprintf(out, "    done; logs are in %s\n", paths.logs)
	return nil
}
