package devices

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
)

func touch(t *testing.T, path string, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCandidates(t *testing.T) {
	sys := t.TempDir()
	for _, n := range []string{"sda", "sdb", "nvme0n1", "loop0"} {
		touch(t, filepath.Join(sys, "class", "block", n, "size"), "0")
	}
	tests := []struct {
		name    string
		sel     Selection
		want    []string
		wantErr bool
	}{
		{"paths sorted", Selection{Paths: []string{"/dev/sdc", "/dev/sda"}}, []string{"/dev/sda", "/dev/sdc"}, false},
		{"name filter", Selection{NameFilter: "^sd[a-z]$"}, []string{"/dev/sda", "/dev/sdb"}, false},
		{"file device", Selection{FileSize: 1 << 30}, []string{"/state/" + FileDeviceName}, false},
		{"nothing selected", Selection{}, nil, true},
		{"two selections", Selection{Paths: []string{"/dev/sda"}, FileSize: 1}, nil, true},
		{"bad filter", Selection{NameFilter: "("}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.sel.Candidates(sys, "/state")
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("Candidates = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSysfsReason(t *testing.T) {
	sys := t.TempDir()
	mk := func(name string, files map[string]string) string {
		dir := filepath.Join(sys, name)
		touch(t, filepath.Join(dir, "size"), "100")
		for f, c := range files {
			touch(t, filepath.Join(dir, f), c)
		}
		return dir
	}
	tests := []struct {
		name, dev string
		files     map[string]string
		want      string
	}{
		{"clean disk", "sda", map[string]string{"ro": "0\n"}, ""},
		{"read-only disk", "sdb", map[string]string{"ro": "1\n"}, "is read-only"},
		{"disk with partitions", "sdc", map[string]string{"ro": "0", "sdc1/partition": "1", "sdc2/partition": "2"}, "has partitions (sdc1, sdc2)"},
		{"a partition itself", "sdd1", map[string]string{"ro": "0", "partition": "1"}, ""},
		{"held by device-mapper", "sde", map[string]string{"holders/dm-0": ""}, "is in use by dm-0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sysfsReason(mk(tt.dev, tt.files), tt.dev); got != tt.want {
				t.Fatalf("sysfsReason = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestMountInfo(t *testing.T) {
	const info = `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
35 22 0:31 / /data rw,relatime shared:2 - btrfs /dev/sdb rw
40 22 7:3 / /mnt/loop rw - xfs /dev/loop3 rw
`
	mounts, err := parseMountInfo(strings.NewReader(info))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ devID, path, want string }{
		{"8:1", "/dev/sda1", "/"},
		{"8:16", "/dev/sdb", "/data"}, // btrfs shows an anonymous device number: matched by source
		{"7:3", "/dev/whatever", "/mnt/loop"},
		{"8:32", "/dev/sdc", ""},
	}
	for _, tt := range tests {
		if got := mountedAt(mounts, tt.devID, tt.path); got != tt.want {
			t.Errorf("mountedAt(%s, %s) = %q, want %q", tt.devID, tt.path, got, tt.want)
		}
	}
	if _, err := parseMountInfo(strings.NewReader("garbage\n")); err == nil {
		t.Error("malformed mountinfo accepted")
	}
}

// sparse creates a sparse file of size bytes and writes content at off.
func sparse(t *testing.T, size int64, off int64, content []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dev.img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if content != nil {
		if _, err := f.WriteAt(content, off); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func TestInspectFiles(t *testing.T) {
	const size = 64 << 20
	stores := t.TempDir()
	in := Inspector{SysRoot: t.TempDir(), MountInfo: "/proc/self/mountinfo", StoresDir: stores}

	ext4 := make([]byte, 2)
	binary.LittleEndian.PutUint16(ext4, 0xEF53)
	// labeled writes a store label; metaLength > 0 names a metadata region on the device (version 2).
	labeled := func(uuid [16]byte, metaLength int64) string {
		path := sparse(t, size, 0, nil)
		dev, err := blockdev.Open(path, blockdev.Options{Buffered: true})
		if err != nil {
			t.Fatal(err)
		}
		defer dev.Close()
		l := blockdev.Label{UUID: uuid, DeviceSize: size, MinAllocSize: 4096, BlockSize: 4096, Created: time.Unix(1, 0)}
		if metaLength > 0 {
			l.MetaOffset, l.MetaLength = 1<<20, metaLength
		}
		if err := blockdev.WriteLabel(dev, l); err != nil {
			t.Fatal(err)
		}
		return path
	}
	ours := [16]byte{1, 2, 3}
	foreign := [16]byte{9, 9, 9}
	if err := os.MkdirAll(filepath.Join(stores, blockdev.FormatUUID(ours)), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		path       string
		sel        Selection
		want       Action
		wantForce  bool
		wantUUID   string
		wantReason string
	}{
		{"empty file", sparse(t, size, 0, nil), Selection{MinSize: 1 << 20}, Mkfs, false, "", ""},
		{"too small", sparse(t, 1<<20, 0, nil), Selection{MinSize: 64 << 20}, Skip, false, "", "too small"},
		{"filesystem", sparse(t, size, 1024+56, ext4), Selection{}, Skip, false, "", "carries ext2"},
		{"filesystem, wipe allowed", sparse(t, size, 1024+56, ext4), Selection{AllowWipe: true}, Mkfs, true, "", "wiping it"},
		{"our store", labeled(ours, 0), Selection{}, Mount, false, blockdev.FormatUUID(ours), ""},
		{"foreign store", labeled(foreign, 0), Selection{}, Skip, false, "", "another cluster's store"},
		{"foreign store, wipe allowed", labeled(foreign, 0), Selection{AllowWipe: true}, Mkfs, true, "", "another cluster's store"},
		// Metadata on the device: mounted without a metadata directory here, never wiped.
		{"store with its metadata on the device", labeled(foreign, 4<<20), Selection{}, Mount, false, blockdev.FormatUUID(foreign), ""},
		{"store with its metadata on the device, wipe allowed", labeled(foreign, 4<<20), Selection{AllowWipe: true}, Mount, false, blockdev.FormatUUID(foreign), ""},
		{"missing file device", filepath.Join(t.TempDir(), FileDeviceName), Selection{FileSize: size}, Mkfs, false, "", ""},
		{"missing device", "/dev/does-not-exist", Selection{}, Skip, false, "", "cannot resolve"},
		{"character device", "/dev/null", Selection{}, Skip, false, "", "neither a block device nor a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := in.Inspect(tt.path, tt.sel)
			if d.Action != tt.want || d.Force != tt.wantForce || d.StoreUUID != tt.wantUUID || !strings.Contains(d.Reason, tt.wantReason) {
				t.Fatalf("Inspect = %+v, want action %s force %v uuid %q reason containing %q", d, tt.want, tt.wantForce, tt.wantUUID, tt.wantReason)
			}
			if d.MetaOnDevice != (d.Action == Mount && strings.Contains(tt.name, "on the device")) {
				t.Fatalf("Inspect = %+v: MetaOnDevice wrong", d)
			}
			if d.Action == Skip && d.Reason == "" {
				t.Fatal("skip without a reason")
			}
		})
	}
}
