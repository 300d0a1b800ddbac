package fuseloop

import (
	"os/exec"
	"strings"
	"testing"
)

// TestChildProcessesDoNotInheritTheFUSEConnection: a process started after New (as the node
// daemon starts mkfs and mount) holds no /dev/fuse descriptor, so the connection ends with this
// process and its devices fail with EIO instead of hanging.
func TestChildProcessesDoNotInheritTheFUSEConnection(t *testing.T) {
	f := newTestFrontend(t, Options{})
	if _, err := f.Expose(t.Context(), "vol-exec", 4*MiB, newMemBackend(4*MiB)); err != nil {
		t.Fatal(err)
	}
	// The child lists its own descriptors: ls resolves each link in /proc/self/fd.
	out, err := exec.Command("ls", "-l", "/proc/self/fd/").CombinedOutput()
	if err != nil {
		t.Fatalf("ls /proc/self/fd in a child: %v: %s", err, out)
	}
	if strings.Contains(string(out), "/dev/fuse") {
		t.Fatalf("a child started after New holds the FUSE connection:\n%s", out)
	}
}
