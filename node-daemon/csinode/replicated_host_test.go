package csinode_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cobaltstore/cobalt/csi/driver"
	"github.com/cobaltstore/cobalt/node-daemon/csinode"
	"github.com/cobaltstore/cobalt/node-daemon/objstore"
	"github.com/cobaltstore/cobalt/node-daemon/volume"
)

// storeReplicated serves the volumes of one store as replicated volumes, fenced by generation
// as the replica layer fences them: an Open claims the volume, the backends of older generations
// fail their I/O with ErrFenced from then on, and an Open at an older generation fails.
type storeReplicated struct {
	vols *volume.Manager
	mu   sync.Mutex
	// REQUIRES: mu for the fields below.
	newest   map[string]uint64
	opened   []csinode.ReplicatedOpen
	backends []*storeReplica
}

func newStoreReplicated(vols *volume.Manager) *storeReplicated {
	return &storeReplicated{vols: vols, newest: make(map[string]uint64)}
}

func (s *storeReplicated) Open(ctx context.Context, req csinode.ReplicatedOpen) (csinode.ReplicatedBackend, int64, error) {
	info, err := s.vols.Get(ctx, req.VolumeUID)
	if errors.Is(err, objstore.ErrNotFound) {
		return nil, 0, fmt.Errorf("%w: %w", csinode.ErrVolumeNotFound, err)
	}
	if err != nil {
		return nil, 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if req.Generation < s.newest[req.VolumeUID] {
		return nil, 0, fmt.Errorf("generation %d, a copy accepted %d: %w", req.Generation, s.newest[req.VolumeUID], csinode.ErrFenced)
	}
	s.newest[req.VolumeUID] = req.Generation
	s.opened = append(s.opened, req)
	b := &storeReplica{Backend: volume.Backend{Manager: s.vols, ID: req.VolumeUID}, s: s, gen: req.Generation}
	s.backends = append(s.backends, b)
	return b, info.Size, nil
}

// kill makes every backend handed out so far fail, as they do when the daemon dies.
func (s *storeReplicated) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.backends {
		b.dead = true
	}
}

// lastOpen returns the last Open and how many there were.
func (s *storeReplicated) lastOpen() (csinode.ReplicatedOpen, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.opened) == 0 {
		return csinode.ReplicatedOpen{}, 0
	}
	return s.opened[len(s.opened)-1], len(s.opened)
}

// unclosed returns the generations of the live backends (not killed) that are not closed.
func (s *storeReplicated) unclosed() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []uint64
	for _, b := range s.backends {
		if !b.dead && !b.closed {
			out = append(out, b.gen)
		}
	}
	return out
}

type storeReplica struct {
	volume.Backend
	s   *storeReplicated
	gen uint64
	// REQUIRES: s.mu for the fields below.
	dead, closed bool
}

func (b *storeReplica) check() error {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	switch {
	case b.dead:
		return errDead
	case b.closed:
		return errors.New("I/O on a closed replicated backend")
	case b.gen < b.s.newest[b.ID]:
		return fmt.Errorf("generation %d: %w", b.gen, csinode.ErrFenced)
	}
	return nil
}

func (b *storeReplica) ReadAt(ctx context.Context, p []byte, off int64) error {
	if err := b.check(); err != nil {
		return err
	}
	return b.Backend.ReadAt(ctx, p, off)
}

func (b *storeReplica) WriteAt(ctx context.Context, p []byte, off int64) error {
	if err := b.check(); err != nil {
		return err
	}
	return b.Backend.WriteAt(ctx, p, off)
}

func (b *storeReplica) Flush(ctx context.Context) error {
	if err := b.check(); err != nil {
		return err
	}
	return b.Backend.Flush(ctx)
}

func (b *storeReplica) Trim(ctx context.Context, off, length int64) error {
	if err := b.check(); err != nil {
		return err
	}
	return b.Backend.Trim(ctx, off, length)
}

func (b *storeReplica) Size(ctx context.Context) (int64, error) {
	if err := b.check(); err != nil {
		return 0, err
	}
	info, err := b.Manager.Get(ctx, b.ID)
	if err != nil {
		return 0, err
	}
	return info.Size, nil
}

func (b *storeReplica) Close(ctx context.Context) error {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	if b.closed {
		return errors.New("closed twice")
	}
	b.closed = true
	return nil
}

// TestReplicatedMountLifecycle runs a replicated file system volume through the real frontend
// and real mounts: stage at generation 1 (format), publish, write; stage again at generation 2
// while mounted (the device switches to the new backend under the file system, the old one is
// closed), write; expand; a daemon restart whose Recover reopens it at generation 2 with every
// fsync'd write; unpublish and unstage, which close the backend.
func TestReplicatedMountLifecycle(t *testing.T) {
	requireHost(t)
	requireTools(t, "blkid", "mkfs.ext4", "resize2fs")
	n := newNode(t)
	ctx := t.Context()
	const size = 256 * MiB
	vctx := n.createVolume(size)
	vctx[driver.ContextReplicas] = "2"
	uid := vctx[driver.ContextVolumeUID]
	staging, target := filepath.Join(n.dir, "staging"), filepath.Join(n.dir, "pods", "a", "mount")
	stage := func(gen int) *csi.NodeStageVolumeRequest {
		return &csi.NodeStageVolumeRequest{VolumeId: "r", StagingTargetPath: staging, VolumeCapability: mountCap("ext4", writer),
			VolumeContext: vctx, PublishContext: map[string]string{driver.PublishContextGeneration: fmt.Sprint(gen)}}
	}
	publish := &csi.NodePublishVolumeRequest{VolumeId: "r", StagingTargetPath: staging, TargetPath: target, VolumeCapability: mountCap("ext4", writer), VolumeContext: vctx}

	must[*csi.NodeStageVolumeResponse](t, "stage at generation 1")(n.server.NodeStageVolume(ctx, stage(1)))
	must[*csi.NodePublishVolumeResponse](t, "publish")(n.server.NodePublishVolume(ctx, publish))
	first := make([]byte, 2*MiB)
	rand.Read(first)
	writeSynced(t, filepath.Join(target, "first"), first)
	dev, _ := n.frontend.Device(uid)

	// Re-attached at generation 2 while mounted: same device, new backend, the old one closed.
	must[*csi.NodeStageVolumeResponse](t, "stage at generation 2")(n.server.NodeStageVolume(ctx, stage(2)))
	if again, _ := n.frontend.Device(uid); again.Path != dev.Path {
		t.Errorf("device after the restage = %s, want %s still", again.Path, dev.Path)
	}
	if got := n.replicated.unclosed(); len(got) != 1 || got[0] != 2 {
		t.Fatalf("open backends of generations %v, want [2]", got)
	}
	second := make([]byte, MiB+5)
	rand.Read(second)
	writeSynced(t, filepath.Join(target, "second"), second)
	h := must[*csi.NodeGetVolumeHealthResponse](t, "health")(n.server.NodeGetVolumeHealth(ctx, &csi.NodeGetVolumeHealthRequest{VolumeId: "r", VolumePublishPath: target}))
	if st := h.GetVolumeHealth().GetHealthStatuses(); len(st) != 0 {
		t.Errorf("health after the restage: %v", st)
	}

	// Every copy grew (the store's volume stands for them): the device follows.
	const bigger = 384 * MiB
	if _, err := n.vols.Resize(ctx, uid, bigger); err != nil {
		t.Fatal(err)
	}
	resp, err := n.server.NodeExpandVolume(ctx, &csi.NodeExpandVolumeRequest{VolumeId: "r", VolumePath: target, CapacityRange: &csi.CapacityRange{RequiredBytes: bigger}})
	switch {
	case hasCapSysResource(t) && (err != nil || resp.CapacityBytes != bigger):
		t.Errorf("expand = %v, %v; want %d bytes", resp, err, bigger)
	case !hasCapSysResource(t) && (status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "CAP_SYS_RESOURCE")):
		// Without it the kernel refuses ext4's online resize; the device still grows.
		t.Errorf("expand without CAP_SYS_RESOURCE: %v, want FailedPrecondition naming it", err)
	}
	if d, _ := n.frontend.Device(uid); d.Size != bigger {
		t.Errorf("device size after expand = %d, want %d", d.Size, bigger)
	}

	// The daemon dies and starts again: Recover reopens the volume at generation 2.
	n.replicated.kill()
	closeCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_ = n.frontend.Close(closeCtx) // busy: the device is mounted
	n.start()
	if failed := n.server.Recover(ctx); len(failed) != 0 {
		t.Fatalf("Recover failed for %+v", failed)
	}
	if last, _ := n.replicated.lastOpen(); last.Generation != 2 || last.VolumeUID != uid || last.Volume != vctx[driver.ContextVolume] {
		t.Errorf("Recover opened %+v, want %s at generation 2", last, uid)
	}
	for name, data := range map[string][]byte{"first": first, "second": second} {
		if got, err := os.ReadFile(filepath.Join(target, name)); err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s after Recover: %d bytes, %v", name, len(got), err)
		}
	}
	writeSynced(t, filepath.Join(target, "after-recover"), []byte("served again"))

	must[*csi.NodeUnpublishVolumeResponse](t, "unpublish")(n.server.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: "r", TargetPath: target}))
	must[*csi.NodeUnstageVolumeResponse](t, "unstage")(n.server.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: "r", StagingTargetPath: staging}))
	if got := n.replicated.unclosed(); len(got) != 0 {
		t.Errorf("backends left open after unstage: generations %v", got)
	}
	if _, ok := n.frontend.Device(uid); ok {
		t.Error("device still exposed after unstage")
	}
	if m := mountsUnder(t, n.dir); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
	if err := n.server.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
}
