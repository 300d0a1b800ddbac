package blockdev

import (
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
)

// TestQueueDepthBounds checks that no more than QueueDepth I/Os run at once: with every slot taken,
// a read waits until one is given back.
func TestQueueDepthBounds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dev.img")
	if err := os.WriteFile(path, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	synctest.Test(t, func(t *testing.T) {
		d, err := OpenFile(path, Options{QueueDepth: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		d.sem <- struct{}{}
		d.sem <- struct{}{}
		done := make(chan error)
		go func() {
			_, err := d.ReadAt(AlignedBuffer(4096), 0)
			done <- err
		}()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("read ran although all queue slots were taken (err %v)", err)
		default:
		}
		d.release()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		d.release()
	})
}

// TestReadQueueProps parses a fake sysfs tree with a disk and one of its partitions.
func TestReadQueueProps(t *testing.T) {
	root := t.TempDir()
	disk := filepath.Join(root, "devices", "virtual", "block", "sdz")
	part := filepath.Join(disk, "sdz1")
	write := func(p, v string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(disk, "queue", "logical_block_size"), "512")
	write(filepath.Join(disk, "queue", "physical_block_size"), "4096")
	write(filepath.Join(disk, "queue", "rotational"), "1")
	write(filepath.Join(disk, "size"), "2048")
	write(filepath.Join(part, "size"), "1024")
	write(filepath.Join(part, "partition"), "1")
	if err := os.MkdirAll(filepath.Join(root, "dev", "block"), 0o755); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"8:0": disk, "8:1": part} {
		if err := os.Symlink(target, filepath.Join(root, "dev", "block", link)); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		minor    uint32
		wantSize int64
	}{{0, 2048 * 512}, {1, 1024 * 512}} {
		p, err := readQueueProps(root, 8, c.minor)
		if err != nil {
			t.Fatal(err)
		}
		want := queueProps{logicalBlockSize: 512, physicalBlockSize: 4096, rotational: true, sizeBytes: c.wantSize}
		if p != want {
			t.Fatalf("8:%d: %+v, want %+v", c.minor, p, want)
		}
	}
	if !rotationalOf(root, 8, 1) || rotationalOf(root, 9, 9) {
		t.Fatal("rotationalOf wrong")
	}
	if _, err := readQueueProps(root, 9, 9); err == nil {
		t.Fatal("missing device: no error")
	}
	write(filepath.Join(disk, "queue", "rotational"), "yes")
	if _, err := readQueueProps(root, 8, 0); err == nil {
		t.Fatal("garbage in sysfs: no error")
	}
}
