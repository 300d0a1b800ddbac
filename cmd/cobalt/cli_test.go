package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cobaltstore/cobalt/node-daemon/server/servertest"
)

// run executes the CLI with args and returns stdout and stderr.
func run(t *testing.T, stdin []byte, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := newRootCommand("cobalt")
	var out, errOut bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetIn(bytes.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	err := cmd.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

func TestVolumeWriteReadRoundTrip(t *testing.T) {
	env := servertest.Start(t, 1<<30)
	conn := []string{"--tls-dir", env.TLSDir(t, "cobalt-cli"), "--addr", env.Addr, "--store", servertest.StoreUUID}
	vol := append(append([]string{}, conn...), "--volume-id", "v1")

	if _, _, err := run(t, nil, append([]string{"volume", "create", "--size", "16777216"}, vol...)...); err != nil {
		t.Fatalf("volume create: %v", err)
	}
	payload := make([]byte, 3<<20+123)
	rand.Read(payload)
	sum := sha256.Sum256(payload)
	want := hex.EncodeToString(sum[:])
	in := filepath.Join(t.TempDir(), "in.bin")
	if err := os.WriteFile(in, payload, 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := run(t, nil, append([]string{"volume", "write", "-f", in, "--offset", "4096"}, vol...)...)
	if err != nil {
		t.Fatalf("volume write: %v", err)
	}
	if !strings.Contains(stderr, want) || !strings.Contains(stderr, "wrote 3145851 bytes") {
		t.Fatalf("volume write printed %q, want the byte count and sha256 %s", stderr, want)
	}
	// Read to stdout.
	stdout, stderr, err := run(t, nil, append([]string{"volume", "read", "--offset", "4096", "--length", "3145851"}, vol...)...)
	if err != nil {
		t.Fatalf("volume read: %v", err)
	}
	if !bytes.Equal([]byte(stdout), payload) || !strings.Contains(stderr, want) {
		t.Fatalf("volume read returned different data (stderr %q)", stderr)
	}
	// Stdin in, file out.
	if _, _, err := run(t, []byte("hello"), append([]string{"volume", "write", "--offset", "0"}, vol...)...); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out.bin")
	if _, _, err := run(t, nil, append([]string{"volume", "read", "--length", "5", "-o", out}, vol...)...); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); string(got) != "hello" {
		t.Fatalf("read to file = %q", got)
	}
	list, _, err := run(t, nil, append([]string{"volume", "list"}, conn...)...)
	if err != nil || !strings.Contains(list, "v1") || !strings.Contains(list, "16.0MiB") {
		t.Fatalf("volume list = %q, %v", list, err)
	}
	if _, _, err := run(t, nil, append([]string{"volume", "delete"}, vol...)...); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, nil, append([]string{"volume", "read", "--length", "5"}, vol...)...); err == nil || !strings.Contains(err.Error(), "NotFound") {
		t.Fatalf("read of a deleted volume = %v, want NotFound", err)
	}
}

func TestCLIErrors(t *testing.T) {
	env := servertest.Start(t, 1<<30)
	dir := env.TLSDir(t, "cobalt-cli")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no target", []string{"volume", "read", "--tls-dir", dir}, "or give --addr and --store"},
		{"no volume", []string{"volume", "read", "--tls-dir", dir, "--addr", env.Addr, "--store", "s"}, "a volume is required"},
		{"missing tls files", []string{"volume", "list", "--tls-dir", t.TempDir(), "--addr", env.Addr, "--store", "s"}, "load client certificate"},
		{"unknown store", []string{"volume", "list", "--tls-dir", dir, "--addr", env.Addr, "--store", "nope"}, "NotFound"},
		{"bad size", []string{"volume", "create", "--tls-dir", dir, "--addr", env.Addr, "--store", servertest.StoreUUID, "--volume-id", "x", "--size", "5"}, "InvalidArgument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := run(t, nil, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestBenchCommand(t *testing.T) {
	env := servertest.Start(t, 1<<30)
	stdout, _, err := run(t, nil, "bench", "--tls-dir", env.TLSDir(t, "cobalt-cli"), "--addr", env.Addr, "--store", servertest.StoreUUID,
		"--size", "8388608", "--duration", "100ms")
	if err != nil {
		t.Fatalf("bench: %v", err)
	}
	for _, w := range []string{"4k-randwrite-qd1", "4k-randwrite-qd16", "4k-randread-qd1", "4k-randread-qd16", "1m-write-qd4"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("bench output lacks %s:\n%s", w, stdout)
		}
	}
	// The scratch volume is gone.
	if colls, _ := env.Store.ListCollections(context.Background()); len(colls) != 0 {
		t.Fatalf("bench left collections behind: %v", colls)
	}
}

func TestLocalBenchOnAFile(t *testing.T) {
	dev := filepath.Join(t.TempDir(), "dev.img")
	f, err := os.Create(dev)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(256 << 20); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("XFSB"), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	args := []string{"bench", "--device", dev, "--no-fio", "--size", "16777216", "--duration", "100ms"}
	if _, _, err := run(t, nil, args...); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("bench over an XFS signature = %v, want a refusal naming --force", err)
	}
	stdout, _, err := run(t, nil, append(args, "--force")...)
	if err != nil {
		t.Fatalf("local bench: %v", err)
	}
	for _, w := range []string{"4k-randwrite-qd16", "4k-randread-qd1", "1m-write-qd4", "engine = Cobalt volume API"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("local bench output lacks %q:\n%s", w, stdout)
		}
	}
}
