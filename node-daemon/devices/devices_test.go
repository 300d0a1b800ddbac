package devices

import (
	"encoding/binary"
	"hash/crc32"
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
	thisCluster := [16]byte{0xc1, 0x05, 15: 0x01}
	otherCluster := [16]byte{0xc2, 0x05, 15: 0x02}
	in := Inspector{SysRoot: t.TempDir(), MountInfo: "/proc/self/mountinfo", StoresDir: stores, ClusterID: thisCluster}

	ext4 := make([]byte, 2)
	binary.LittleEndian.PutUint16(ext4, 0xEF53)
	// labeled writes a store label; metaLength > 0 names a metadata region on the device (version
	// 2, or 3 with a cluster), a non-zero cluster names the cluster (version 3).
	labeled := func(uuid [16]byte, metaLength int64, cluster [16]byte) string {
		return withLabel(t, size, uuid, metaLength, cluster, nil)
	}
	// Label version 4: the data device of a store whose metadata is on a separate device, and
	// that metadata device.
	separateData := func(uuid, cluster [16]byte) string {
		return withLabel(t, size, uuid, 0, cluster, func(l *blockdev.Label) { l.MetaOnSeparateDevice = true })
	}
	metadataDev := func(uuid, cluster [16]byte) string {
		return withLabel(t, size, uuid, 4<<20, cluster, func(l *blockdev.Label) { l.MetadataDevice = true })
	}
	newer := func() string {
		path := labeled([16]byte{7}, 4<<20, thisCluster)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b[16] = blockdev.LabelVersion + 1
		binary.LittleEndian.PutUint32(b[4092:], crc32.Checksum(b[:4092], crc32.MakeTable(crc32.Castagnoli)))
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	ours := [16]byte{1, 2, 3}
	foreign := [16]byte{9, 9, 9}
	if err := os.MkdirAll(filepath.Join(stores, blockdev.FormatUUID(ours)), 0o755); err != nil {
		t.Fatal(err)
	}
	none := [16]byte{}
	this, other := blockdev.FormatUUID(thisCluster), blockdev.FormatUUID(otherCluster)
	wipe := Selection{AllowWipe: true}
	tests := []struct {
		name        string
		path        string
		sel         Selection
		want        Action
		wantForce   bool
		wantUUID    string
		wantReason  []string
		wantMeta    bool
		wantCluster string
		wantAdopt   bool
		// wantSeparate: Mount of a store whose metadata is on a separate device.
		wantSeparate bool
	}{
		{name: "empty file", path: sparse(t, size, 0, nil), sel: Selection{MinSize: 1 << 20}, want: Mkfs},
		{name: "too small", path: sparse(t, 1<<20, 0, nil), sel: Selection{MinSize: 64 << 20}, want: Skip, wantReason: []string{"too small"}},
		{name: "filesystem", path: sparse(t, size, 1024+56, ext4), want: Skip, wantReason: []string{"carries ext2"}},
		{name: "filesystem, wipe allowed", path: sparse(t, size, 1024+56, ext4), sel: wipe, want: Mkfs, wantForce: true, wantReason: []string{"wiping it"}},
		// This cluster's store (label version 3), its metadata on the device: mounted on any node.
		{name: "same cluster", path: labeled(foreign, 4<<20, thisCluster), want: Mount, wantUUID: blockdev.FormatUUID(foreign), wantMeta: true, wantCluster: this},
		{name: "same cluster, wipe allowed", path: labeled(foreign, 4<<20, thisCluster), sel: wipe, want: Mount, wantUUID: blockdev.FormatUUID(foreign), wantMeta: true, wantCluster: this},
		// Another cluster's store: never mounted; wiped only when allowed.
		{name: "other cluster", path: labeled(foreign, 4<<20, otherCluster), want: Skip, wantCluster: other,
			wantReason: []string{"another Cobalt cluster", "cluster ID " + other, "this cluster is " + this, "allowWipe", "does not allow wiping"}},
		{name: "other cluster, wipe allowed", path: labeled(foreign, 4<<20, otherCluster), sel: wipe, want: Mkfs, wantForce: true, wantCluster: other,
			wantReason: []string{"another Cobalt cluster", "cluster ID " + other, "wiping it as the spec allows"}},
		{name: "other cluster, metadata in a directory", path: labeled(ours, 0, otherCluster), want: Skip, wantCluster: other, wantReason: []string{"cluster ID " + other}},
		// Label version 2 names no cluster: adopted by the cluster that mounts it.
		{name: "no cluster id", path: labeled(foreign, 4<<20, none), want: Mount, wantUUID: blockdev.FormatUUID(foreign), wantMeta: true, wantAdopt: true},
		{name: "no cluster id, wipe allowed", path: labeled(foreign, 4<<20, none), sel: wipe, want: Mount, wantUUID: blockdev.FormatUUID(foreign), wantMeta: true, wantAdopt: true},
		// Label version 1 (metadata in a state directory): mounted only where that directory is.
		{name: "dir-layout v1 store of this node", path: labeled(ours, 0, none), want: Mount, wantUUID: blockdev.FormatUUID(ours)},
		{name: "dir-layout v1 store of elsewhere", path: labeled(foreign, 0, none), want: Skip, wantReason: []string{"another cluster's store", "does not allow wiping"}},
		{name: "dir-layout v1 store of elsewhere, wipe allowed", path: labeled(foreign, 0, none), sel: wipe, want: Mkfs, wantForce: true, wantReason: []string{"another cluster's store", "wiping it"}},
		// Label version 4: a data device whose metadata is on a separate device mounts (with that
		// device); a metadata device is never a store, and this cluster's is never wiped.
		{name: "same cluster, metadata on a separate device", path: separateData(foreign, thisCluster), want: Mount, wantUUID: blockdev.FormatUUID(foreign),
			wantMeta: true, wantSeparate: true, wantCluster: this},
		{name: "metadata device of this cluster", path: metadataDev(foreign, thisCluster), sel: wipe, want: Skip, wantCluster: this,
			wantReason: []string{"is the metadata device of store " + blockdev.FormatUUID(foreign), "never as a store"}},
		{name: "metadata device of no cluster", path: metadataDev(foreign, none), sel: wipe, want: Skip, wantReason: []string{"is the metadata device of store"}},
		{name: "metadata device of another cluster", path: metadataDev(foreign, otherCluster), want: Skip, wantCluster: other,
			wantReason: []string{"another Cobalt cluster", "does not allow wiping"}},
		{name: "separate-metadata store of no cluster", path: separateData(foreign, none), want: Skip,
			wantReason: []string{"names no cluster and keeps its metadata on a separate device", "does not allow wiping"}},
		{name: "newer label", path: newer(), want: Skip, wantReason: []string{"cannot read", "newer format"}},
		{name: "missing file device", path: filepath.Join(t.TempDir(), FileDeviceName), sel: Selection{FileSize: size}, want: Mkfs},
		{name: "missing device", path: "/dev/does-not-exist", want: Skip, wantReason: []string{"cannot resolve"}},
		{name: "character device", path: "/dev/null", want: Skip, wantReason: []string{"neither a block device nor a regular file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := in.Inspect(tt.path, tt.sel)
			if d.Action != tt.want || d.Force != tt.wantForce || d.StoreUUID != tt.wantUUID || d.MetaOnDevice != tt.wantMeta ||
				d.StoreCluster != tt.wantCluster || d.Adopt != tt.wantAdopt || d.MetaOnSeparateDevice != tt.wantSeparate {
				t.Fatalf("Inspect = %+v, want action %s force %v uuid %q metaOnDevice %v cluster %q adopt %v",
					d, tt.want, tt.wantForce, tt.wantUUID, tt.wantMeta, tt.wantCluster, tt.wantAdopt)
			}
			for _, r := range tt.wantReason {
				if !strings.Contains(d.Reason, r) {
					t.Fatalf("reason %q does not say %q", d.Reason, r)
				}
			}
			if d.Action == Skip && d.Reason == "" {
				t.Fatal("skip without a reason")
			}
		})
	}
}

// withLabel makes a file device of size bytes with a store label (version 2 and later when
// metaLength names a metadata region, 3 with a cluster, 4 when edit gives it a device role).
func withLabel(t *testing.T, size int64, uuid [16]byte, metaLength int64, cluster [16]byte, edit func(*blockdev.Label)) string {
	t.Helper()
	path := sparse(t, size, 0, nil)
	dev, err := blockdev.Open(path, blockdev.Options{Buffered: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	l := blockdev.Label{UUID: uuid, DeviceSize: size, MinAllocSize: 4096, BlockSize: 4096, Created: time.Unix(1, 0), ClusterID: cluster}
	if metaLength > 0 {
		l.MetaOffset, l.MetaLength = 1<<20, metaLength
	}
	if edit != nil {
		edit(&l)
	}
	if err := blockdev.WriteLabel(dev, l); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestInspectWithoutClusterID: an inspector that does not know its cluster treats every store that
// names a cluster as another cluster's.
func TestInspectWithoutClusterID(t *testing.T) {
	path := sparse(t, 64<<20, 0, nil)
	dev, err := blockdev.Open(path, blockdev.Options{Buffered: true})
	if err != nil {
		t.Fatal(err)
	}
	l := blockdev.Label{UUID: [16]byte{5}, DeviceSize: 64 << 20, MinAllocSize: 4096, BlockSize: 4096, Created: time.Unix(1, 0),
		MetaOffset: 1 << 20, MetaLength: 4 << 20, ClusterID: [16]byte{6}}
	err = blockdev.WriteLabel(dev, l)
	dev.Close()
	if err != nil {
		t.Fatal(err)
	}
	d := Inspector{SysRoot: t.TempDir(), MountInfo: "/proc/self/mountinfo"}.Inspect(path, Selection{})
	if d.Action != Skip || !strings.Contains(d.Reason, "this cluster is unknown") {
		t.Fatalf("Inspect = %+v, want a skip of another cluster's store", d)
	}
}
