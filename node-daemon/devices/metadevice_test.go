package devices

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
)

// TestWithMetadataDevice: a new store gets its listed metadata device when that device is blank
// (or wipeable with allowWipe, or labeled by this device's own interrupted mkfs), and is skipped
// with a reason otherwise; a store whose metadata is on a separate device mounts with whichever
// of the node's metadata devices carries its label, and is skipped when none does.
func TestWithMetadataDevice(t *testing.T) {
	const size = 64 << 20
	this := [16]byte{0xc1, 0x05, 15: 0x01}
	in := Inspector{SysRoot: t.TempDir(), MountInfo: "/proc/self/mountinfo", StoresDir: t.TempDir(), ClusterID: this}
	ext4 := make([]byte, 2)
	binary.LittleEndian.PutUint16(ext4, 0xEF53)
	store, other := [16]byte{1, 2, 3}, [16]byte{4, 5, 6}
	storeID := blockdev.FormatUUID(store)
	metaOf := func(id [16]byte) string {
		return withLabel(t, size, id, 4<<20, this, func(l *blockdev.Label) { l.MetadataDevice = true })
	}
	dataOf := func(id [16]byte) string {
		return withLabel(t, size, id, 0, this, func(l *blockdev.Label) { l.MetaOnSeparateDevice = true })
	}
	blank := func() string { return sparse(t, size, 0, nil) }

	type want struct {
		action Action
		meta   string // "" for none; "listed" for the listed metadata device
		force  bool
		reason []string
	}
	cases := []struct {
		name    string
		data    string
		meta    string // the metadata device listed for data ("" for none)
		extra   []string
		wipe    bool
		pending string
		want    want
	}{
		{name: "new store, blank metadata device", data: blank(), meta: blank(), want: want{action: Mkfs, meta: "listed"}},
		{name: "new store, no metadata device listed", data: blank(), want: want{action: Mkfs}},
		{name: "new store, metadata device with a filesystem", data: blank(), meta: sparse(t, size, 1024+56, ext4),
			want: want{action: Skip, reason: []string{"its metadata device", "carries ext2", "does not allow wiping"}}},
		{name: "new store, metadata device with a filesystem, wipe allowed", data: blank(), meta: sparse(t, size, 1024+56, ext4), wipe: true,
			want: want{action: Mkfs, meta: "listed", force: true, reason: []string{"metadata device", "wiping it"}}},
		{name: "new store, metadata device too small", data: blank(), meta: sparse(t, 16<<20, 0, nil),
			want: want{action: Skip, reason: []string{"its metadata device", "too small"}}},
		{name: "new store, another store's metadata device", data: blank(), meta: metaOf(other), wipe: true,
			want: want{action: Skip, reason: []string{"is the metadata device of store " + blockdev.FormatUUID(other)}}},
		{name: "new store, metadata device of its own interrupted mkfs", data: blank(), meta: metaOf(store), pending: storeID,
			want: want{action: Mkfs, meta: "listed", force: true}},
		{name: "new store, metadata device carries a store of this cluster", data: blank(),
			meta: withLabel(t, size, other, 4<<20, this, nil), wipe: true,
			want: want{action: Skip, reason: []string{"carries store " + blockdev.FormatUUID(other) + " of this cluster"}}},
		{name: "existing store finds its metadata device", data: dataOf(store), meta: metaOf(store),
			want: want{action: Mount, meta: "listed"}},
		{name: "existing store finds its metadata device listed for another path", data: dataOf(store), extra: []string{metaOf(other), metaOf(store)},
			want: want{action: Mount, meta: "extra1"}},
		{name: "existing store without its metadata device", data: dataOf(store), meta: metaOf(other),
			want: want{action: Skip, reason: []string{"carries store " + storeID, "none of this node's metadata devices", "spec.devices.metadataDevices"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sel := Selection{Paths: []string{c.data}, AllowWipe: c.wipe, MinSize: 1 << 20, MetadataDevices: map[string]string{}}
			if c.meta != "" {
				sel.MetadataDevices[c.data] = c.meta
			}
			for i, e := range c.extra {
				sel.MetadataDevices[c.data+"-other"+string(rune('0'+i))] = e
			}
			d := in.WithMetadataDevice(in.Inspect(c.data, sel), sel, func(path string) string {
				if path != c.data {
					t.Fatalf("asked for the pending mkfs of %s, not of %s", path, c.data)
				}
				return c.pending
			})
			wantMeta := c.want.meta
			switch {
			case wantMeta == "listed":
				wantMeta = c.meta
			case strings.HasPrefix(wantMeta, "extra"):
				wantMeta = c.extra[wantMeta[len(wantMeta)-1]-'0']
			}
			if d.Action != c.want.action || d.MetadataDevice != wantMeta || d.Force != c.want.force {
				t.Fatalf("decision %+v, want action %s, metadata device %q, force %v", d, c.want.action, wantMeta, c.want.force)
			}
			for _, r := range c.want.reason {
				if !strings.Contains(d.Reason, r) {
					t.Fatalf("reason %q does not say %q", d.Reason, r)
				}
			}
		})
	}
}
