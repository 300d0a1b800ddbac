package blockdev_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev/blockdevtest"
)

func sparseFile(t *testing.T, size int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dev.img")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestFileConformance(t *testing.T) {
	for _, buffered := range []bool{false, true} {
		name := map[bool]string{false: "direct", true: "buffered"}[buffered]
		t.Run(name, func(t *testing.T) {
			blockdevtest.Run(t, func(t *testing.T) blockdev.Device {
				d, err := blockdev.Open(sparseFile(t, 8<<20), blockdev.Options{Buffered: buffered, QueueDepth: 4})
				if err != nil {
					t.Fatal(err)
				}
				return d
			})
		})
	}
}

func TestOpenFileInfo(t *testing.T) {
	path := sparseFile(t, 8<<20+1000) // a partial trailing block is not usable
	d, err := blockdev.OpenFile(path, blockdev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	info := d.Info()
	want := blockdev.Info{Path: path, Size: 8 << 20, LogicalBlockSize: 4096, PhysicalBlockSize: 4096,
		Rotational: info.Rotational, Direct: true, QueueDepth: blockdev.DefaultQueueDepth}
	if info != want {
		t.Fatalf("Info = %+v, want %+v", info, want)
	}
	if d.Size() != info.Size || d.BlockSize() != 4096 || d.Rotational() != info.Rotational {
		t.Fatal("Device methods disagree with Info")
	}
}

func TestOpenErrorsNamePath(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.img")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, path string
		opts       blockdev.Options
		want       string
	}{
		{"missing", filepath.Join(dir, "nope.img"), blockdev.Options{}, "no such file"},
		{"directory", dir, blockdev.Options{}, "not a regular file or block device"},
		{"char-device", "/dev/null", blockdev.Options{}, "not a regular file or block device"},
		{"empty-file", empty, blockdev.Options{}, "smaller than one 4096-byte block"},
		{"negative-queue-depth", empty, blockdev.Options{QueueDepth: -1}, "queue depth -1 outside"},
		{"huge-queue-depth", empty, blockdev.Options{QueueDepth: blockdev.MaxQueueDepth + 1}, "queue depth 4097 outside"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := blockdev.Open(c.path, c.opts)
			if err == nil {
				d.Close()
				t.Fatalf("Open(%s) succeeded", c.path)
			}
			if !strings.Contains(err.Error(), c.path) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Open(%s) error %q: want it to name the path and say %q", c.path, err, c.want)
			}
		})
	}
}

func TestOpenReadOnly(t *testing.T) {
	path := sparseFile(t, 1<<20)
	d, err := blockdev.Open(path, blockdev.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	buf := blockdev.AlignedBuffer(4096)
	if _, err := d.WriteAt(buf, 0); !errors.Is(err, blockdev.ErrReadOnly) {
		t.Fatalf("WriteAt on read-only device: %v, want ErrReadOnly", err)
	}
	if _, err := d.ReadAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	if err := d.Flush(); err != nil {
		t.Fatalf("Flush on read-only device: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Flush(); !errors.Is(err, blockdev.ErrClosed) {
		t.Fatalf("Flush after Close: %v, want ErrClosed", err)
	}
}

func TestOpenCreateSize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.img")
	d, err := blockdev.Open(path, blockdev.Options{CreateSize: 3<<20 + 5})
	if err != nil {
		t.Fatal(err)
	}
	if d.Size() != 3<<20 {
		t.Fatalf("size %d, want %d", d.Size(), 3<<20)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	// An existing file is left as it is.
	d, err = blockdev.Open(path, blockdev.Options{CreateSize: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Size() != 3<<20 {
		t.Fatalf("reopened size %d, want %d", d.Size(), 3<<20)
	}
}

// allocatedBytes is the space the file at path has on its file system (st_blocks).
func allocatedBytes(t *testing.T, path string) int64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

func TestOpenCreateAllocated(t *testing.T) {
	const size = 9 << 20 // not a multiple of the 4 MiB chunks it is written in
	dir := t.TempDir()
	sparse, allocated := filepath.Join(dir, "sparse.img"), filepath.Join(dir, "allocated.img")
	for _, c := range []struct {
		path     string
		allocate bool
	}{{sparse, false}, {allocated, true}} {
		d, err := blockdev.Open(c.path, blockdev.Options{CreateSize: size, CreateAllocated: c.allocate})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if got := allocatedBytes(t, sparse); got >= size {
		t.Fatalf("sparse file has %d bytes allocated, want fewer than %d", got, size)
	}
	if got := allocatedBytes(t, allocated); got < size {
		t.Fatalf("allocated file has %d bytes allocated, want at least %d", got, size)
	}
	data, err := os.ReadFile(allocated)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != size || strings.Trim(string(data), "\x00") != "" {
		t.Fatalf("allocated file: %d bytes, not all zero", len(data))
	}

	// An existing file is neither rewritten nor allocated.
	if err := os.WriteFile(sparse, []byte("kept"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(sparse, size); err != nil {
		t.Fatal(err)
	}
	d, err := blockdev.Open(sparse, blockdev.Options{CreateSize: size, CreateAllocated: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if data, err = os.ReadFile(sparse); err != nil {
		t.Fatal(err)
	}
	if string(data[:4]) != "kept" {
		t.Fatalf("existing file rewritten: starts with %q", data[:4])
	}
	if got := allocatedBytes(t, sparse); got >= size {
		t.Fatalf("existing sparse file has %d bytes allocated after Open, want fewer than %d", got, size)
	}
}

func TestLoopDevice(t *testing.T) {
	dev := blockdevtest.LoopDevice(t, 64<<20)
	open := func(t *testing.T) blockdev.Device {
		d, err := blockdev.Open(dev, blockdev.Options{QueueDepth: 8})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	blockdevtest.Run(t, open)

	d, err := blockdev.OpenFile(dev, blockdev.Options{Exclusive: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	info := d.Info()
	if !info.BlockDevice || info.Size != 64<<20 || !info.Direct {
		t.Fatalf("Info = %+v, want a 64 MiB block device opened with O_DIRECT", info)
	}
	name := filepath.Base(dev)
	wantLBS := readSysInt(t, "/sys/block/"+name+"/queue/logical_block_size")
	wantPBS := readSysInt(t, "/sys/block/"+name+"/queue/physical_block_size")
	wantRot := readSysInt(t, "/sys/block/"+name+"/queue/rotational") != 0
	if info.LogicalBlockSize != wantLBS || info.PhysicalBlockSize != wantPBS || info.Rotational != wantRot {
		t.Fatalf("Info = %+v, sysfs says lbs %d pbs %d rotational %v", info, wantLBS, wantPBS, wantRot)
	}
	// A second exclusive opener is refused while the first holds the device.
	if d2, err := blockdev.Open(dev, blockdev.Options{Exclusive: true}); err == nil {
		d2.Close()
		t.Fatal("second exclusive open succeeded")
	} else if !strings.Contains(err.Error(), dev) {
		t.Fatalf("exclusive open error %q does not name %s", err, dev)
	}
}

func readSysInt(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v int
	for _, c := range strings.TrimSpace(string(b)) {
		v = v*10 + int(c-'0')
	}
	return v
}
