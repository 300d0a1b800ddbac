package integration

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// cobalt runs the cobalt CLI against the test API server and returns its stdout and stderr.
func cobalt(t *testing.T, args ...string) (string, string) {
	t.Helper()
	cmd := exec.Command(cobaltBin, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("cobalt %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), stderr.String()
}

// cliRoundTrip shows the CLI on a running cluster: the status tables, then a file streamed into
// the Volume named name and back out, compared by SHA-256. It logs the transcript.
func cliRoundTrip(t *testing.T, c *cluster, name string) {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.bin"), filepath.Join(dir, "out.bin")
	payload := make([]byte, 7<<20+511)
	rand.Read(payload)
	if err := os.WriteFile(in, payload, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(payload)
	want := hex.EncodeToString(sum[:])
	ca := "--ca-secret=" + c.namespace + "/cobalt-ca"
	status, _ := cobalt(t, "status", "-n", c.namespace)
	_, wrote := cobalt(t, "volume", "write", name, "-n", c.namespace, ca, "-f", in, "--offset", "16777216")
	_, read := cobalt(t, "volume", "read", name, "-n", c.namespace, ca, "-o", out, "--offset", "16777216", "--length", "7340543")
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	gotSum := sha256.Sum256(got)
	t.Logf("transcript:\n$ sha256sum in.bin\n%s  in.bin\n$ cobalt status -n %s\n%s$ cobalt volume write %s -f in.bin --offset 16777216\n%s$ cobalt volume read %s -o out.bin --offset 16777216 --length 7340543\n%s$ sha256sum out.bin\n%s  out.bin",
		want, c.namespace, status, name, wrote, name, read, hex.EncodeToString(gotSum[:]))
	if !strings.Contains(wrote, want) || !strings.Contains(read, want) || gotSum != sum {
		t.Fatal("the data read back through the CLI differs from what was written")
	}
	for _, col := range []string{"STORE", "CAPACITY", "VOLUME", "stores ready"} {
		if !strings.Contains(status, col) {
			t.Fatalf("status output lacks %q", col)
		}
	}
}
