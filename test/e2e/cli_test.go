//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// cobaltCLI runs the cobalt CLI against the cluster, as a user would.
type cobaltCLI struct {
	bin, kubeconfig, namespace, caSecret string
}

// run runs `cobalt args...` and returns stdout and stderr; a non-zero exit is an error that
// carries stderr.
func (c cobaltCLI) run(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	full := append([]string{"--kubeconfig", c.kubeconfig, "-n", c.namespace, "--ca-secret", c.caSecret}, args...)
	cmd := exec.CommandContext(ctx, c.bin, full...)
	var so, se strings.Builder
	cmd.Stdout, cmd.Stderr = &so, &se
	if err := cmd.Run(); err != nil {
		return so.String(), se.String(), fmt.Errorf("cobalt %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(se.String()))
	}
	return so.String(), se.String(), nil
}

var cliSum = regexp.MustCompile(`(wrote|read) (\d+) bytes at offset (\d+), sha256 ([0-9a-f]{64})`)

// write streams file into volume at offset; it returns the SHA-256 the CLI reports, after
// checking it reported the whole file.
func (c cobaltCLI) write(ctx context.Context, volume, file string, offset, size int64) (string, error) {
	_, stderr, err := c.run(ctx, "volume", "write", volume, "-f", file, "--offset", strconv.FormatInt(offset, 10))
	if err != nil {
		return "", err
	}
	return checkReport(stderr, "wrote", offset, size)
}

// read reads length bytes at offset of volume into file and returns the SHA-256 of what it
// wrote to the file, after checking the CLI reports the same sum.
func (c cobaltCLI) read(ctx context.Context, volume, file string, offset, length int64) (string, error) {
	_, stderr, err := c.run(ctx, "volume", "read", volume, "-o", file,
		"--offset", strconv.FormatInt(offset, 10), "--length", strconv.FormatInt(length, 10))
	if err != nil {
		return "", err
	}
	reported, err := checkReport(stderr, "read", offset, length)
	if err != nil {
		return "", err
	}
	got, err := fileSum(file)
	if err != nil {
		return "", err
	}
	if got != reported {
		return "", fmt.Errorf("cobalt volume read reported sha256 %s but wrote %s to %s", reported, got, file)
	}
	return got, nil
}

func checkReport(stderr, verb string, offset, size int64) (string, error) {
	m := cliSum.FindStringSubmatch(stderr)
	if m == nil || m[1] != verb {
		return "", fmt.Errorf("no %q report in the CLI's output: %q", verb, stderr)
	}
	if m[2] != strconv.FormatInt(size, 10) || m[3] != strconv.FormatInt(offset, 10) {
		return "", fmt.Errorf("CLI %s %s bytes at offset %s, want %d at %d", verb, m[2], m[3], size, offset)
	}
	return m[4], nil
}

// randomFile writes size random bytes to path and returns their SHA-256.
func randomFile(path string, size int64) (string, error) {
	f, err := os.Create(path)
	if err != nil {
		return "", fmt.Errorf("create %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, size); err != nil {
		return "", fmt.Errorf("fill %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("close %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func fileSum(path string) (string, error) {
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
