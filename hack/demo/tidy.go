package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// removeAllButLogs removes everything the demo wrote under its state directory except the logs
// directory and the state file (which the caller removes last, once this succeeded): the
// manifests, the data written through the volume API, kubeconfigs, the control plane's and the
// node's directories, sockets. It is called only after everything the demo started is stopped
// and detached, and it first checks that nothing is mounted under the state directory, so it
// never deletes a volume's files through a mount (os.RemoveAll crosses mount points).
func removeAllButLogs(paths demoPaths) error {
	mps, err := mountsUnder(paths.dir)
	if err != nil {
		return err
	}
	if len(mps) > 0 {
		return fmt.Errorf("still mounted: %s (nothing under %s removed)", strings.Join(mps, ", "), paths.dir)
	}
	entries, err := os.ReadDir(paths.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", paths.dir, err)
	}
	var errs []error
	for _, e := range entries {
		p := filepath.Join(paths.dir, e.Name())
		if p == paths.logs || p == paths.state {
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}
