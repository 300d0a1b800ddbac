package fuseloop

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/onsi/gomega"
	"golang.org/x/sys/unix"
)

// childEnv makes the test binary a daemon for TestRestartAfterKill: it serves two volumes at the
// directory the variable names, prints "<volume> <device>" per volume and "ready", and runs
// until its stdin closes (so it never outlives the test) or it is killed.
const childEnv = "COBALT_FUSELOOP_CHILD_MOUNTDIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(runChild(dir))
	}
	os.Exit(m.Run())
}

func runChild(dir string) int {
	ctx := context.Background()
	f, err := New(ctx, Options{MountDir: dir, Log: logr.Discard()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: New:", err)
		return 1
	}
	for _, id := range []string{"vol-held", "vol-idle"} {
		dev, err := f.Expose(ctx, id, 4*MiB, newMemBackend(4*MiB))
		if err != nil {
			fmt.Fprintln(os.Stderr, "child: Expose:", err)
			_ = f.Close(ctx)
			return 1
		}
		fmt.Println(id, dev.Path)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := f.Close(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "child: Close:", err)
		return 1
	}
	return 0
}

// startChild runs the test binary as a daemon serving vol-held and vol-idle at dir (runChild)
// and returns it with the devices it exposed; the child is killed when the test ends.
func startChild(t *testing.T, dir string) (*exec.Cmd, map[string]string) {
	t.Helper()
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), childEnv+"="+dir)
	child.Stderr = os.Stderr
	stdin, err := child.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		_ = child.Process.Kill()
		_ = child.Wait()
	})
	devs := map[string]string{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && sc.Text() != "ready" {
		id, path, _ := strings.Cut(sc.Text(), " ")
		devs[id] = path
	}
	return child, devs
}

// waitStopped waits until every thread of process pid is stopped: kill(2) only queues SIGSTOP,
// and a server thread that is still running could answer New's probe.
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	allStopped := func() (bool, error) {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			return false, err
		}
		for _, task := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
			if errors.Is(err, os.ErrNotExist) {
				continue // the thread exited
			}
			if err != nil {
				return false, err
			}
			// The state follows the command name's last closing parenthesis.
			i := strings.LastIndex(string(b), ") ")
			if i < 0 || i+2 >= len(b) || (b[i+2] != 'T' && b[i+2] != 't') {
				return false, nil
			}
		}
		return true, nil
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, err := allStopped()
		if err != nil {
			t.Fatalf("threads of process %d: %v", pid, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d did not stop within 10s of SIGSTOP", pid)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestRestartAfterKill(t *testing.T) {
	requireHost(t)
	dir := filepath.Join(t.TempDir(), "mnt")
	t.Cleanup(func() { sweep(t, dir) }) // whatever a failure left, off the shared host

	child, devs := startChild(t, dir)
	if len(devs) != 2 {
		t.Fatalf("child exposed %v, want vol-held and vol-idle", devs)
	}
	// A Pod's mount of vol-held: it holds the device open across the death.
	held := openDirect(t, devs["vol-held"])
	if _, err := held.WriteAt(pattern(4096, 0, 1), 0); err != nil {
		t.Fatalf("write before the kill: %v", err)
	}

	if err := child.Process.Signal(unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()

	// What the Pod sees: its device fails with EIO; the mount is dead.
	if _, err := held.ReadAt(alignedBuf(4096), 0); !errors.Is(err, unix.EIO) {
		t.Fatalf("read from the device of a dead daemon: %v, want EIO", err)
	}
	if _, err := held.WriteAt(pattern(4096, 0, 2), 0); !errors.Is(err, unix.EIO) {
		t.Fatalf("write to the device of a dead daemon: %v, want EIO", err)
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); !errors.Is(err, unix.ENOTCONN) {
		t.Fatalf("stat of the dead mount: %v, want ENOTCONN", err)
	}

	f := newTestFrontend(t, Options{MountDir: dir, DetachTimeout: 200 * time.Millisecond})
	rec := f.Recovery()
	if rec.DeadMounts != 1 {
		t.Errorf("Recovery.DeadMounts = %d, want 1", rec.DeadMounts)
	}
	wantBusy := []StaleDevice{{Path: devs["vol-held"], VolumeID: "vol-held"}}
	if fmt.Sprint(rec.Busy) != fmt.Sprint(wantBusy) {
		t.Errorf("Recovery.Busy = %v, want %v", rec.Busy, wantBusy)
	}
	// vol-idle had no opener but the daemon: autoclear freed it when the daemon died, or New did.
	for _, d := range rec.Detached {
		if d.VolumeID != "vol-idle" {
			t.Errorf("Recovery.Detached has %v, want only vol-idle", d)
		}
	}
	if got := loopBacking(t, devs["vol-idle"]); strings.HasPrefix(got, dir+"/") {
		t.Errorf("%s still bound to %q", devs["vol-idle"], got)
	}

	// The Pod's mount goes away: autoclear frees the device.
	held.Close()
	gomega.NewWithT(t).Eventually(func() string { return loopBacking(t, devs["vol-held"]) }, 5*time.Second, 10*time.Millisecond).
		Should(gomega.Not(gomega.HavePrefix(dir+"/")), devs["vol-held"]+" detached after its last user closed it")

	// The CSI node plugin exposes the volume again and gets a working device.
	b := newMemBackend(4 * MiB)
	dev, err := f.Expose(t.Context(), "vol-held", 4*MiB, b)
	if err != nil {
		t.Fatalf("Expose after recovery: %v", err)
	}
	d := openDirect(t, dev.Path)
	if _, err := d.WriteAt(pattern(4096, 8192, 3), 8192); err != nil {
		t.Fatalf("write after recovery: %v", err)
	}
	if got := b.bytes(8192, 4096); string(got) != string(pattern(4096, 8192, 3)) {
		t.Fatal("write after recovery did not reach the backend")
	}
	d.Close()
}

func TestNewRefusesLiveMount(t *testing.T) {
	f := newTestFrontend(t, Options{})
	if _, err := New(t.Context(), Options{MountDir: f.MountDir(), Log: logr.Discard()}); err == nil {
		t.Fatal("a second New on a live mount succeeded")
	}
	if _, err := f.Expose(t.Context(), "vol-still", MiB, newMemBackend(MiB)); err != nil {
		t.Fatalf("the first Frontend stopped working after the refused New: %v", err)
	}
}

// TestNewAbortsAStuckServer: a previous daemon that cannot exit (here: stopped with SIGSTOP, as a
// daemon with a thread stuck in the kernel on its own loop device is for FUSE's purposes) keeps
// its connection alive but answers nothing. New aborts that connection instead of failing or
// hanging: the old devices fail with EIO, and the volumes can be exposed again.
func TestNewAbortsAStuckServer(t *testing.T) {
	requireHost(t)
	dir := filepath.Join(t.TempDir(), "mnt")
	t.Cleanup(func() { sweep(t, dir) })
	child, devs := startChild(t, dir)
	held := openDirect(t, devs["vol-held"])
	defer held.Close()
	if err := child.Process.Signal(unix.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitStopped(t, child.Process.Pid)

	start := time.Now()
	f := newTestFrontend(t, Options{MountDir: dir, DetachTimeout: 200 * time.Millisecond, StuckTimeout: time.Second})
	if rec := f.Recovery(); rec.Aborted != 1 || rec.DeadMounts != 1 {
		t.Errorf("Recovery = %+v, want 1 aborted connection and 1 dead mount", rec)
	}
	t.Logf("New aborted the stuck server's connection in %s", time.Since(start).Round(time.Millisecond))
	if _, err := held.ReadAt(alignedBuf(4096), 0); !errors.Is(err, unix.EIO) {
		t.Fatalf("read from the device of the aborted server: %v, want EIO", err)
	}
	b := newMemBackend(4 * MiB)
	dev, err := f.Expose(t.Context(), "vol-held", 4*MiB, b)
	if err != nil {
		t.Fatalf("Expose after the abort: %v", err)
	}
	d := openDirect(t, dev.Path)
	defer d.Close()
	if _, err := d.WriteAt(pattern(4096, 0, 9), 0); err != nil {
		t.Fatalf("write after the abort: %v", err)
	}
}
