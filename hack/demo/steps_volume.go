package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

func (d *demo) createVolume(ctx context.Context, say sayFunc) error {
	manifest := fmt.Sprintf(`apiVersion: storage.cobalt.io/v1alpha1
kind: Volume
metadata:
  name: %s
  namespace: %s
spec:
  size: 64Mi
  volumeMode: Block
`, d.cfg.volumeName, d.cfg.namespace)
	if err := d.applyManifest(ctx, "volume.yaml", manifest); err != nil {
		return err
	}
	if err := d.recordCreated(KubeObject{Kind: "volume", Namespace: d.cfg.namespace, Name: d.cfg.volumeName}); err != nil {
		return err
	}
	say("applied %s", filepath.Join(d.paths.manifests, "volume.yaml"))
	err := waitUntil(ctx, say, "Volume "+d.cfg.volumeName, 2*time.Minute, time.Second, []*proc{d.operator, d.node}, func(ctx context.Context) (bool, string, error) {
		c, err := d.kc.readyCondition(ctx, d.cfg.namespace, "volume", d.cfg.volumeName)
		return c.status == "True", c.String(), err
	})
	if err != nil {
		return err
	}
	placement, err := d.kc.run(ctx, "get", "volume", d.cfg.volumeName, "-n", d.cfg.namespace, "-o", "jsonpath={.status.placement.store} on {.status.placement.node}")
	if err != nil {
		return err
	}
	say("placed on store %s", placement)
	return nil
}

func (d *demo) writeAndReadBack(ctx context.Context, say sayFunc) error {
	cli := d.cfg.bin("cobalt")
	if _, err := os.Stat(cli); err != nil {
		return notAvailable("make build produced no bin/cobalt: the CLI (cmd/cobalt, with `volume write` and `volume read`) is not in the repository yet")
	}
	in := filepath.Join(d.paths.data, "written.bin")
	back := filepath.Join(d.paths.data, "read-back.bin")
	wantSum, err := writeRandomFile(in, int64(d.cfg.dataMiB)<<20)
	if err != nil {
		return err
	}
	say("sha256 of the %d MiB written: %s", d.cfg.dataMiB, wantSum)
	say("$ cobalt volume write %s -n %s -f %s", d.cfg.volumeName, d.cfg.namespace, in)
	if err := d.runCLI(ctx, "", "volume", "write", d.cfg.volumeName, "-n", d.cfg.namespace, "-f", in); err != nil {
		return err
	}
	if err := d.runCLI(ctx, "", "volume", "read", d.cfg.volumeName, "-n", d.cfg.namespace, "--length", fmt.Sprint(int64(d.cfg.dataMiB)<<20), "-o", back); err != nil {
		return err
	}
	say("$ cobalt volume read %s -n %s --length %d -o %s", d.cfg.volumeName, d.cfg.namespace, int64(d.cfg.dataMiB)<<20, back)
	gotSum, err := fileSHA256(back)
	if err != nil {
		return err
	}
	say("sha256 of the %d MiB read back: %s", d.cfg.dataMiB, gotSum)
	if gotSum != wantSum {
		return fmt.Errorf("the data read back differs from the data written (%s vs %s); both are in %s", gotSum, wantSum, d.paths.data)
	}
	say("checksums match")
	// The Store's used bytes come with the node daemon's next heartbeat; show them once there.
	var store string
	err = waitUntil(ctx, say, "the Store's next heartbeat to count the data", 30*time.Second, time.Second, []*proc{d.node}, func(ctx context.Context) (bool, string, error) {
		var err error
		if store, err = d.kc.run(ctx, "get", "volume", d.cfg.volumeName, "-n", d.cfg.namespace, "-o", "jsonpath={.status.placement.store}"); err != nil {
			return false, "", err
		}
		used, err := d.kc.run(ctx, "get", "store", store, "-o", "jsonpath={.status.used}")
		if err != nil {
			return false, "", err
		}
		used = strings.TrimSpace(used)
		return used != "" && used != "0", "store " + store + " reports used=" + used, nil
	})
	if err != nil {
		say("note: %v", err)
		return nil
	}
	used, _ := d.kc.run(ctx, "get", "store", store, "-o", "jsonpath={.status.used}")
	say("store %s now reports %s used", store, used)
	return nil
}

// runCLI runs the cobalt CLI against the demo's cluster; its standard output goes to stdoutPath
// when set, and everything else to the CLI's log.
func (d *demo) runCLI(ctx context.Context, stdoutPath string, args ...string) error {
	logPath := filepath.Join(d.paths.logs, "cobalt-cli.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open %s: %w", logPath, err)
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "--- %s: cobalt %s\n", time.Now().Format(time.RFC3339), strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, d.cfg.bin("cobalt"), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+d.paths.kubeconfig)
	cmd.Stderr = logFile
	cmd.Stdout = logFile
	if stdoutPath != "" {
		out, err := os.Create(stdoutPath)
		if err != nil {
			return fmt.Errorf("create %s: %w", stdoutPath, err)
		}
		defer out.Close()
		cmd.Stdout = out
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("cobalt %s: %w (see %s)", strings.Join(args, " "), err, logPath)
	}
	return nil
}

func (d *demo) show(ctx context.Context, say sayFunc) error {
	out, err := d.kc.run(ctx, "get", "storageclusters,stores,volumes", "-A")
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "\n$ kubectl get storageclusters,stores,volumes -A\n%s\n", out)
	if _, err := os.Stat(d.cfg.bin("cobalt")); err != nil {
		return notAvailable("`cobalt status` needs bin/cobalt, which make build did not produce (cmd/cobalt is not in the repository yet)")
	}
	var status strings.Builder
	cmd := exec.CommandContext(ctx, d.cfg.bin("cobalt"), "status", "-n", d.cfg.namespace)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+d.paths.kubeconfig)
	cmd.Stdout = &status
	cmd.Stderr = &status
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("cobalt status: %w: %s", err, status.String())
	}
	fmt.Fprintf(d.out, "$ cobalt status -n %s\n%s\n", d.cfg.namespace, status.String())
	return nil
}

// writeRandomFile fills path with size random bytes and returns their sha256.
func writeRandomFile(path string, size int64) (string, error) {
	f, err := os.Create(path)
	if err != nil {
		return "", fmt.Errorf("create %s: %w", path, err)
	}
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, size); err != nil {
		_ = f.Close()
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("close %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
