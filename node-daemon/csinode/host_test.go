package csinode_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/go-logr/logr/testr"
	"github.com/google/uuid"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/cobaltstore/cobalt/csi/driver"
	"github.com/cobaltstore/cobalt/node-daemon/app"
	"github.com/cobaltstore/cobalt/node-daemon/csinode"
	"github.com/cobaltstore/cobalt/node-daemon/engine"
	"github.com/cobaltstore/cobalt/node-daemon/frontend"
	"github.com/cobaltstore/cobalt/node-daemon/frontend/fuseloop"
	"github.com/cobaltstore/cobalt/node-daemon/server"
	"github.com/cobaltstore/cobalt/node-daemon/volume"
)

const MiB = 1 << 20

// requireHost skips, saying why, when the test cannot mount FUSE, attach loop devices and mount
// file systems. Cobalt's CI and dev machines run these tests as root, so they do run there.
func requireHost(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts FUSE and file systems, attaches loop devices")
	}
	for _, p := range []string{"/dev/fuse", "/dev/loop-control"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("needs %s: %v", p, err)
		}
	}
}

// requireTools fails the test when a file system's tools are missing: they are part of the
// node plugin's job (`make csi-tools` installs them).
func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: install e2fsprogs and xfsprogs (make csi-tools)", tool)
		}
	}
}

// node is a node daemon's worth of CSI node plugin: a real engine store on a sparse file, its
// volume manager, the real FUSE + loop frontend and a Server, all under one test directory.
type node struct {
	t       *testing.T
	dir     string
	stores  *server.Stores
	store   string
	vols    *volume.Manager
	volumes *killable
	// replicated serves the store's volumes as replicated ones (fenced by generation); like
	// the copies on other nodes, it outlives a restart of the daemon (start).
	replicated *storeReplicated
	frontend   *fuseloop.Frontend
	server     *csinode.Server
}

// killable wraps the daemon's Volumes so a test can make every backend it handed out fail, as
// the FUSE connection does when the daemon dies: the old devices return EIO from then on.
type killable struct {
	csinode.Volumes
	dead atomic.Pointer[atomic.Bool]
}

func (k *killable) Backend(ctx context.Context, store, uid string) (frontend.Backend, int64, error) {
	b, size, err := k.Volumes.Backend(ctx, store, uid)
	if err != nil {
		return nil, 0, err
	}
	return &killableBackend{Backend: b, dead: k.dead.Load()}, size, nil
}

// kill makes every backend handed out so far fail; later ones work.
func (k *killable) kill() {
	k.dead.Load().Store(true)
	k.dead.Store(new(atomic.Bool))
}

type killableBackend struct {
	frontend.Backend
	dead *atomic.Bool
}

var errDead = errors.New("the daemon serving this device is dead")

func (b *killableBackend) ReadAt(ctx context.Context, p []byte, off int64) error {
	if b.dead.Load() {
		return errDead
	}
	return b.Backend.ReadAt(ctx, p, off)
}

func (b *killableBackend) WriteAt(ctx context.Context, p []byte, off int64) error {
	if b.dead.Load() {
		return errDead
	}
	return b.Backend.WriteAt(ctx, p, off)
}

func (b *killableBackend) Flush(ctx context.Context) error {
	if b.dead.Load() {
		return errDead
	}
	return b.Backend.Flush(ctx)
}

func (b *killableBackend) Trim(ctx context.Context, off, length int64) error {
	if b.dead.Load() {
		return errDead
	}
	return b.Backend.Trim(ctx, off, length)
}

func newNode(t *testing.T) *node {
	t.Helper()
	requireHost(t)
	dir := t.TempDir()
	e := engine.New(engine.Settings{EngineConfig: app.EngineConfig{CacheType: "2q", MinAllocSize: 4096}})
	ctx := t.Context()
	id := uuid.NewString()
	dev, db := filepath.Join(dir, "store.img"), filepath.Join(dir, "db")
	if err := e.Mkfs(ctx, app.MkfsRequest{DevicePath: dev, DBDir: db, UUID: id, CreateSize: 2 << 30}); err != nil {
		t.Fatalf("mkfs store: %v", err)
	}
	st, err := e.Open(ctx, app.OpenRequest{DevicePath: dev, LegacyDBDir: db})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	vm, err := volume.Open(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	stores := server.NewStores()
	if err := stores.Add(&server.Mounted{Store: st, Volumes: vm, DevicePath: dev}); err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, dir: dir, stores: stores, store: id, vols: vm}
	n.volumes = &killable{Volumes: &csinode.StoreVolumes{Stores: stores}}
	n.volumes.dead.Store(new(atomic.Bool))
	n.replicated = newStoreReplicated(vm)
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	n.start()
	// Registered last, so it runs first: before the frontend and the store close, and before
	// TempDir's removal, which must not descend into a mount.
	t.Cleanup(func() { sweep(t, dir) })
	return n
}

// start starts a frontend and a Server on the node's directories, as a daemon start does.
func (n *node) start() {
	t := n.t
	fe, err := fuseloop.New(t.Context(), fuseloop.Options{MountDir: filepath.Join(n.dir, "fuse"), Log: testr.New(t).WithName("frontend")})
	if err != nil {
		t.Fatalf("fuseloop.New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := fe.Close(ctx); err != nil && !errors.Is(err, frontend.ErrDeviceBusy) {
			t.Errorf("close frontend: %v", err)
		}
	})
	s, err := csinode.New(csinode.Options{NodeName: "node-a", Volumes: n.volumes, Replicated: n.replicated, Frontend: fe, StateDir: filepath.Join(n.dir, "csi"), Log: testr.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	n.frontend, n.server = fe, s
}

// createVolume creates a volume on the store and returns its volume context.
func (n *node) createVolume(size int64) map[string]string {
	n.t.Helper()
	uid := uuid.NewString()
	if _, err := n.vols.Create(n.t.Context(), uid, size, 0); err != nil {
		n.t.Fatalf("create volume: %v", err)
	}
	return map[string]string{driver.ContextStoreUUID: n.store, driver.ContextVolumeUID: uid, driver.ContextVolume: "cobalt/vol"}
}

// sweep unmounts (lazily, deepest first) whatever a failed test left mounted under dir, except
// the frontend's own mount, which the frontend's Close removes; a passing test leaves nothing,
// which it asserts itself.
func sweep(t *testing.T, dir string) {
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		t.Errorf("read mountinfo: %v", err)
		return
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].Mountpoint) > len(mounts[j].Mountpoint) })
	for _, m := range mounts {
		if m.Mountpoint == filepath.Join(dir, "fuse") {
			continue
		}
		t.Logf("cleaning up a mount left at %s (%s)", m.Mountpoint, m.FSType)
		_ = unix.Unmount(m.Mountpoint, unix.MNT_DETACH)
	}
}

// mountsUnder returns the mount points under dir.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range mounts {
		if !strings.HasPrefix(m.Mountpoint, filepath.Join(dir, "fuse")) {
			out = append(out, m.Mountpoint)
		}
	}
	return out
}

func mountCap(fs string, mode csi.VolumeCapability_AccessMode_Mode) *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: fs}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode},
	}
}

func blockCap(mode csi.VolumeCapability_AccessMode_Mode) *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode},
	}
}

func must[T any](t *testing.T, what string) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

// writeSynced writes data to path and fsyncs it.
func writeSynced(t *testing.T, path string, data []byte) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync %s: %v", path, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// hasCapSysResource reports whether the process has CAP_SYS_RESOURCE, which ext4's online
// resize needs (a privileged container has it; some sandboxes drop it even for root).
func hasCapSysResource(t *testing.T) bool {
	t.Helper()
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		t.Fatalf("capget: %v", err)
	}
	return data[0].Effective&(1<<unix.CAP_SYS_RESOURCE) != 0
}

// blkidType returns the file system type on a device ("" when none).
func blkidType(dev string) (string, error) {
	out, err := exec.Command("blkid", "-p", "-s", "TYPE", "-o", "value", dev).Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 2 {
		return "", nil
	}
	return strings.TrimSpace(string(out)), err
}

// alignedBuf returns a page-aligned buffer for O_DIRECT.
func alignedBuf(n int) []byte {
	b := make([]byte, n+4096)
	off := 4096 - int(uintptr(unsafe.Pointer(&b[0]))%4096)
	return b[off%4096 : off%4096+n]
}

func errorsIs(err error, target error) bool { return errors.Is(err, target) }
