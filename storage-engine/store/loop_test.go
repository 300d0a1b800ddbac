package store

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev/blockdevtest"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// loopEnv formats a fresh loop device (O_DIRECT) with metadata on the real filesystem. It skips
// when not root; CI runs as root.
func loopEnv(t *testing.T, opts Options) *testEnv {
	t.Helper()
	path := blockdevtest.LoopDevice(t, 256<<20)
	dev, err := blockdev.Open(path, blockdev.Options{})
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() {
		if err := dev.Close(); err != nil {
			t.Errorf("close %s: %v", path, err)
		}
	})
	e := &testEnv{dev: dev, fs: vfs.Default, dir: filepath.Join(t.TempDir(), "db"), opts: opts}
	e.opts.FS = vfs.Default
	e.opts.verifyShards = true
	if _, err := Mkfs(ctx, dev, e.dir, MkfsOptions{FS: vfs.Default}); err != nil {
		t.Fatalf("Mkfs on %s: %v", path, err)
	}
	return e
}

func TestLoopDeviceModel(t *testing.T) {
	runModel(t, loopEnv(t, Options{PreferDeferredSize: 32 << 10, DeferredBatch: 8}), 300, 11)
}

// kill stops a store as a killed process would: no deferred flush, no final work; the KV keeps
// only what was synced (every commit is).
func kill(t *testing.T, s *Store) {
	t.Helper()
	s.life.Lock()
	s.closed = true
	close(s.queue)
	s.life.Unlock()
	close(s.stopBG)
	s.wg.Wait()
	if err := s.db.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestLoopDeviceKillAndBitRot(t *testing.T) {
	// The flusher never runs on its own: the overwrites stay in the deferred log. Reads are not
	// cached, so that the read after the bit flip reaches the device.
	e := loopEnv(t, Options{PreferDeferredSize: 64 << 10, DeferredBatch: 1 << 20, DeferredInterval: time.Hour,
		DisableBufferedReads: true})
	s, err := Open(ctx, e.dev, e.dir, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	data := pattern(1<<20, 7)
	commit(t, s, NewTransaction().CreateCollection("c").Write("c", "o", 0, data))
	for i := range 10 {
		off := uint64(i * 70001)
		commit(t, s, NewTransaction().Write("c", "o", off, []byte("pending")))
		copy(data[off:], "pending")
	}
	kill(t, s)
	s = e.open(t)
	mustRead(t, s, "c", "o", 0, 0, data)
	if m := s.Metrics(); m.DeferredReplayed == 0 {
		t.Fatal("mount replayed nothing")
	}
	// Flip a bit on the device under the store.
	on, err := s.loadOnode(OnodeKey{"c", "o"})
	if err != nil {
		t.Fatal(err)
	}
	phys := int64(on.Extents[0].Phys)
	blk := blockdev.AlignedBuffer(4096)
	if _, err := e.dev.ReadAt(blk, phys); err != nil {
		t.Fatal(err)
	}
	blk[99] ^= 1
	if _, err := e.dev.WriteAt(blk, phys); err != nil {
		t.Fatal(err)
	}
	_, err = s.Read(ctx, "c", "o", 0, 4096)
	var ce *CorruptionError
	if !errors.As(err, &ce) || ce.Offset != 0 {
		t.Fatalf("read of rotten block = %v", err)
	}
	commit(t, s, NewTransaction().Write("c", "o", 0, data[:4096])) // heal before the cleanup fsck
}
