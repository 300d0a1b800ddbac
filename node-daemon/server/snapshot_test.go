package server_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cobaltstore/cobalt/node-daemon/app"
	"github.com/cobaltstore/cobalt/node-daemon/engine"
	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
	"github.com/cobaltstore/cobalt/node-daemon/server/servertest"
)

func snapRef(id string) *nodepb.SnapshotRef {
	return &nodepb.SnapshotRef{StoreUuid: storeUUID, SnapshotId: id}
}

func fromSnapshot(id string) *nodepb.VolumeContentSource {
	return &nodepb.VolumeContentSource{Source: &nodepb.VolumeContentSource_SnapshotId{SnapshotId: id}}
}

func fromVolume(id string) *nodepb.VolumeContentSource {
	return &nodepb.VolumeContentSource{Source: &nodepb.VolumeContentSource_VolumeId{VolumeId: id}}
}

// readAll reads length bytes of volume id at off over the unary Read.
func readAll(t *testing.T, ctx context.Context, v nodepb.VolumeServiceClient, id string, off, length int64) []byte {
	t.Helper()
	resp, err := v.Read(ctx, &nodepb.ReadRequest{Ref: ref(id), Offset: off, Length: length})
	if err != nil {
		t.Fatalf("Read %s [%d, +%d): %v", id, off, length, err)
	}
	return resp.GetData()
}

// TestSnapshotLifecycleOverGRPC takes a snapshot of a written volume, overwrites the volume, and
// checks that a restore shows the old data, a clone the new, and that every call repeats safely.
func TestSnapshotLifecycleOverGRPC(t *testing.T) {
	e := start(t, 1<<30)
	ctx := ctxT(t)
	v := e.client.Volumes
	const size = 8 << 20
	if _, err := v.CreateVolume(ctx, &nodepb.CreateVolumeRequest{Ref: ref("db"), SizeBytes: size, StripeSizeBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	old := bytes.Repeat([]byte("old!"), 3<<18) // 3 MiB over three stripes
	if _, err := v.Write(ctx, &nodepb.WriteRequest{Ref: ref("db"), Offset: 512 << 10, Data: old}); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	snap, err := v.CreateSnapshot(ctx, &nodepb.CreateSnapshotRequest{Source: ref("db"), SnapshotId: "db-snap"})
	if err != nil {
		t.Fatalf("CreateSnapshot: %v", err)
	}
	s := snap.GetSnapshot()
	if created := s.GetCreationTime().AsTime(); s.GetCreationTime() == nil || created.Before(before) || created.After(time.Now()) {
		t.Fatalf("snapshot creation_time %v is not between %v and now", s.GetCreationTime(), before)
	}
	if s.GetRef().GetSnapshotId() != "db-snap" || s.GetRef().GetStoreUuid() != storeUUID || s.GetSourceVolumeId() != "db" ||
		s.GetSizeBytes() != size || s.GetStripeSizeBytes() != 1<<20 || s.GetReferencedBytes() < int64(len(old)) {
		t.Fatalf("CreateSnapshot = %v", s)
	}
	again, err := v.CreateSnapshot(ctx, &nodepb.CreateSnapshotRequest{Source: ref("db"), SnapshotId: "db-snap"})
	if err != nil || again.GetSnapshot().GetSizeBytes() != size || again.GetSnapshot().GetSourceVolumeId() != "db" ||
		!again.GetSnapshot().GetCreationTime().AsTime().Equal(s.GetCreationTime().AsTime()) {
		t.Fatalf("repeated CreateSnapshot = %v, %v", again, err)
	}
	// Overwrite part of the volume after the snapshot.
	fresh := bytes.Repeat([]byte("new!"), 1<<18) // 1 MiB
	if _, err := v.Write(ctx, &nodepb.WriteRequest{Ref: ref("db"), Offset: 1 << 20, Data: fresh}); err != nil {
		t.Fatal(err)
	}
	got, err := v.GetSnapshot(ctx, &nodepb.GetSnapshotRequest{Ref: snapRef("db-snap")})
	if err != nil || got.GetSnapshot().GetSourceVolumeId() != "db" || got.GetSnapshot().GetSizeBytes() != size {
		t.Fatalf("GetSnapshot = %v, %v", got, err)
	}

	// Restore to a larger size: the snapshot's data, zeros past it.
	restored, err := v.CreateVolume(ctx, &nodepb.CreateVolumeRequest{Ref: ref("db-restore"), SizeBytes: 2 * size, ContentSource: fromSnapshot("db-snap")})
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if r := restored.GetVolume(); r.GetSizeBytes() != 2*size || r.GetStripeSizeBytes() != 1<<20 || r.GetContentSource().GetSnapshotId() != "db-snap" {
		t.Fatalf("restored = %v", r)
	}
	if !bytes.Equal(readAll(t, ctx, v, "db-restore", 512<<10, int64(len(old))), old) {
		t.Fatal("restored volume does not hold the data from before the snapshot")
	}
	if !bytes.Equal(readAll(t, ctx, v, "db-restore", size, size), make([]byte, size)) {
		t.Fatal("restored volume's growth does not read as zeros")
	}
	// Repeating the restore returns the volume it made.
	if _, err := v.CreateVolume(ctx, &nodepb.CreateVolumeRequest{Ref: ref("db-restore"), SizeBytes: 2 * size, ContentSource: fromSnapshot("db-snap")}); err != nil {
		t.Fatalf("repeated restore: %v", err)
	}
	// A restore at the snapshot's size (0) is written to without touching the snapshot.
	if _, err := v.CreateVolume(ctx, &nodepb.CreateVolumeRequest{Ref: ref("db-restore0"), ContentSource: fromSnapshot("db-snap")}); err != nil {
		t.Fatalf("restore of size 0: %v", err)
	}
	if _, err := v.Write(ctx, &nodepb.WriteRequest{Ref: ref("db-restore0"), Offset: 512 << 10, Data: []byte("scribble")}); err != nil {
		t.Fatal(err)
	}

	// Clone the live volume: the new data.
	clone, err := v.CreateVolume(ctx, &nodepb.CreateVolumeRequest{Ref: ref("db-clone"), ContentSource: fromVolume("db")})
	if err != nil {
		t.Fatalf("clone: %v", err)
	}
	if c := clone.GetVolume(); c.GetSizeBytes() != size || c.GetContentSource().GetVolumeId() != "db" {
		t.Fatalf("clone = %v", c)
	}
	want := append(append(bytes.Clone(old[:512<<10]), fresh...), old[512<<10+len(fresh):]...)
	if !bytes.Equal(readAll(t, ctx, v, "db-clone", 512<<10, int64(len(old))), want) {
		t.Fatal("clone does not hold the source's current data")
	}
	if got, err := v.GetVolume(ctx, &nodepb.GetVolumeRequest{Ref: ref("db-clone")}); err != nil || got.GetVolume().GetContentSource().GetVolumeId() != "db" {
		t.Fatalf("GetVolume of the clone = %v, %v", got, err)
	}
	if got, err := v.GetVolume(ctx, &nodepb.GetVolumeRequest{Ref: ref("db")}); err != nil || got.GetVolume().GetContentSource() != nil {
		t.Fatalf("GetVolume of an empty-created volume = %v, %v (want no content source)", got, err)
	}

	// Delete the snapshot: the volumes made from it keep their data; deleting again succeeds.
	if _, err := v.DeleteSnapshot(ctx, &nodepb.DeleteSnapshotRequest{Ref: snapRef("db-snap")}); err != nil {
		t.Fatalf("DeleteSnapshot: %v", err)
	}
	if _, err := v.DeleteSnapshot(ctx, &nodepb.DeleteSnapshotRequest{Ref: snapRef("db-snap")}); err != nil {
		t.Fatalf("repeated DeleteSnapshot: %v", err)
	}
	if _, err := v.GetSnapshot(ctx, &nodepb.GetSnapshotRequest{Ref: snapRef("db-snap")}); status.Code(err) != codes.NotFound {
		t.Fatalf("GetSnapshot after delete = %v, want NotFound", err)
	}
	if !bytes.Equal(readAll(t, ctx, v, "db-restore", 512<<10, int64(len(old))), old) {
		t.Fatal("restored volume lost its data when the snapshot was deleted")
	}
	// A snapshot outlives its source volume.
	if _, err := v.CreateSnapshot(ctx, &nodepb.CreateSnapshotRequest{Source: ref("db-clone"), SnapshotId: "clone-snap"}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.DeleteVolume(ctx, &nodepb.DeleteVolumeRequest{Ref: ref("db-clone")}); err != nil {
		t.Fatalf("DeleteVolume of a snapshot's source: %v", err)
	}
	if _, err := v.CreateVolume(ctx, &nodepb.CreateVolumeRequest{Ref: ref("from-orphan"), ContentSource: fromSnapshot("clone-snap")}); err != nil {
		t.Fatalf("restore of a snapshot whose source was deleted: %v", err)
	}
	if !bytes.Equal(readAll(t, ctx, v, "from-orphan", 512<<10, int64(len(old))), want) {
		t.Fatal("restore of a snapshot whose source was deleted differs")
	}
}

// TestListSnapshotsPagesAndFilters lists 25 snapshots of two volumes in pages of 7, all and by
// source.
func TestListSnapshotsPagesAndFilters(t *testing.T) {
	e := start(t, 1<<30)
	ctx := ctxT(t)
	v := e.client.Volumes
	for _, id := range []string{"a", "b"} {
		if _, err := v.CreateVolume(ctx, &nodepb.CreateVolumeRequest{Ref: ref(id), SizeBytes: 1 << 20}); err != nil {
			t.Fatal(err)
		}
	}
	var all, ofB []string
	for i := range 25 {
		src, id := "a", fmt.Sprintf("s-%02d", i)
		if i%3 == 0 {
			src = "b"
			ofB = append(ofB, id)
		}
		all = append(all, id)
		if _, err := v.CreateSnapshot(ctx, &nodepb.CreateSnapshotRequest{Source: ref(src), SnapshotId: id}); err != nil {
			t.Fatal(err)
		}
	}
	list := func(source string) (ids []string, pages int) {
		for start := ""; ; pages++ {
			resp, err := v.ListSnapshots(ctx, &nodepb.ListSnapshotsRequest{StoreUuid: storeUUID, SourceVolumeId: source, Start: start, Limit: 7})
			if err != nil {
				t.Fatalf("ListSnapshots(%q, from %q): %v", source, start, err)
			}
			if len(resp.GetSnapshots()) > 7 {
				t.Fatalf("page of %d snapshots, limit 7", len(resp.GetSnapshots()))
			}
			for _, s := range resp.GetSnapshots() {
				if source != "" && s.GetSourceVolumeId() != source {
					t.Fatalf("ListSnapshots(%q) returned %v", source, s)
				}
				ids = append(ids, s.GetRef().GetSnapshotId())
			}
			if resp.GetNext() == "" {
				return ids, pages + 1
			}
			start = resp.GetNext()
		}
	}
	if ids, pages := list(""); strings.Join(ids, ",") != strings.Join(all, ",") || pages != 4 {
		t.Fatalf("all snapshots in %d pages: %v, want %v in 4", pages, ids, all)
	}
	if ids, pages := list("b"); strings.Join(ids, ",") != strings.Join(ofB, ",") || pages != 2 {
		t.Fatalf("snapshots of b in %d pages: %v, want %v in 2", pages, ids, ofB)
	}
	if ids, _ := list("gone"); len(ids) != 0 {
		t.Fatalf("snapshots of a volume that does not exist: %v", ids)
	}
	resp, err := v.ListSnapshots(ctx, &nodepb.ListSnapshotsRequest{StoreUuid: storeUUID})
	if err != nil || len(resp.GetSnapshots()) != 25 || resp.GetNext() != "" {
		t.Fatalf("ListSnapshots with the default limit = %d snapshots, next %q, %v", len(resp.GetSnapshots()), resp.GetNext(), err)
	}
}

// TestSnapshotErrors checks each refusal's code and that its message says what to fix.
func TestSnapshotErrors(t *testing.T) {
	e := start(t, 64<<20)
	ctx := ctxT(t)
	v := e.client.Volumes
	if _, err := v.CreateVolume(ctx, &nodepb.CreateVolumeRequest{Ref: ref("src"), SizeBytes: 8 << 20, StripeSizeBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.CreateVolume(ctx, &nodepb.CreateVolumeRequest{Ref: ref("other"), SizeBytes: 4 << 20}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.CreateSnapshot(ctx, &nodepb.CreateSnapshotRequest{Source: ref("src"), SnapshotId: "snap"}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.CreateVolume(ctx, &nodepb.CreateVolumeRequest{Ref: ref("restored"), ContentSource: fromSnapshot("snap")}); err != nil {
		t.Fatal(err)
	}
	createFrom := func(id string, size, stripe int64, src *nodepb.VolumeContentSource) func() error {
		return func() error {
			_, err := v.CreateVolume(ctx, &nodepb.CreateVolumeRequest{Ref: ref(id), SizeBytes: size, StripeSizeBytes: stripe, ContentSource: src})
			return err
		}
	}
	snapshot := func(src *nodepb.VolumeRef, id string) func() error {
		return func() error {
			_, err := v.CreateSnapshot(ctx, &nodepb.CreateSnapshotRequest{Source: src, SnapshotId: id})
			return err
		}
	}
	tests := []struct {
		name string
		call func() error
		want codes.Code
		// msg are substrings the message must hold.
		msg []string
	}{
		{"snapshot: no source", snapshot(nil, "s"), codes.InvalidArgument, []string{"source"}},
		{"snapshot: bad snapshot_id", snapshot(ref("src"), "a/b"), codes.InvalidArgument, []string{"snapshot_id", `"a/b"`}},
		{"snapshot: empty snapshot_id", snapshot(ref("src"), ""), codes.InvalidArgument, []string{"snapshot_id"}},
		{"snapshot: missing volume", snapshot(ref("nope"), "s"), codes.NotFound, []string{`"nope"`}},
		{"snapshot: unknown store", snapshot(&nodepb.VolumeRef{StoreUuid: "nope", VolumeId: "src"}, "s"), codes.NotFound, []string{"nope"}},
		{"snapshot: same ID of another volume", snapshot(ref("other"), "snap"), codes.AlreadyExists, []string{`"snap"`, `"src"`, `"other"`}},
		{"get: missing snapshot", func() error {
			_, err := v.GetSnapshot(ctx, &nodepb.GetSnapshotRequest{Ref: snapRef("nope")})
			return err
		}, codes.NotFound, []string{`"nope"`}},
		{"get: no ref", func() error {
			_, err := v.GetSnapshot(ctx, &nodepb.GetSnapshotRequest{})
			return err
		}, codes.InvalidArgument, []string{"ref"}},
		{"delete: bad snapshot_id", func() error {
			_, err := v.DeleteSnapshot(ctx, &nodepb.DeleteSnapshotRequest{Ref: snapRef("..")})
			return err
		}, codes.OK, nil}, // ".." is a valid ID of nothing: deleting it succeeds
		{"delete: snapshot_id with a slash", func() error {
			_, err := v.DeleteSnapshot(ctx, &nodepb.DeleteSnapshotRequest{Ref: snapRef("x/y")})
			return err
		}, codes.InvalidArgument, []string{"snapshot_id"}},
		{"list: bad source_volume_id", func() error {
			_, err := v.ListSnapshots(ctx, &nodepb.ListSnapshotsRequest{StoreUuid: storeUUID, SourceVolumeId: "a b"})
			return err
		}, codes.InvalidArgument, []string{"source_volume_id"}},
		{"list: limit too large", func() error {
			_, err := v.ListSnapshots(ctx, &nodepb.ListSnapshotsRequest{StoreUuid: storeUUID, Limit: 1 << 20})
			return err
		}, codes.InvalidArgument, []string{"limit"}},
		{"list: no store", func() error {
			_, err := v.ListSnapshots(ctx, &nodepb.ListSnapshotsRequest{})
			return err
		}, codes.InvalidArgument, []string{"store_uuid"}},
		{"restore: smaller than the snapshot", createFrom("small", 4<<20, 0, fromSnapshot("snap")), codes.OutOfRange,
			[]string{"size_bytes", fmt.Sprint(4 << 20), fmt.Sprint(8 << 20)}},
		{"clone: smaller than the source", createFrom("small", 4<<20, 0, fromVolume("src")), codes.OutOfRange,
			[]string{"size_bytes", fmt.Sprint(4 << 20), fmt.Sprint(8 << 20)}},
		{"restore: missing snapshot", createFrom("r", 0, 0, fromSnapshot("nope")), codes.NotFound, []string{`"nope"`}},
		{"clone: missing volume", createFrom("r", 0, 0, fromVolume("nope")), codes.NotFound, []string{`"nope"`}},
		{"restore: bad snapshot_id", createFrom("r", 0, 0, fromSnapshot("../x")), codes.InvalidArgument, []string{"content_source.snapshot_id"}},
		{"clone: bad volume_id", createFrom("r", 0, 0, fromVolume("")), codes.InvalidArgument, []string{"content_source.volume_id"}},
		{"clone: of itself", createFrom("src", 0, 0, fromVolume("src")), codes.InvalidArgument, []string{"content_source.volume_id"}},
		{"restore: empty content source", createFrom("r", 0, 0, &nodepb.VolumeContentSource{}), codes.InvalidArgument, []string{"content_source"}},
		{"restore: other stripe size", createFrom("r", 0, 4<<20, fromSnapshot("snap")), codes.InvalidArgument,
			[]string{"stripe_size_bytes", fmt.Sprint(4 << 20), fmt.Sprint(1 << 20)}},
		{"restore: negative size", createFrom("r", -4096, 0, fromSnapshot("snap")), codes.InvalidArgument, []string{"size_bytes"}},
		{"restore: unaligned size", createFrom("r", 8<<20+1, 0, fromSnapshot("snap")), codes.InvalidArgument, nil},
		{"restore: larger than the store", createFrom("r", 1<<40, 0, fromSnapshot("snap")), codes.ResourceExhausted, nil},
		{"restore: repeated with another size", createFrom("restored", 16<<20, 0, fromSnapshot("snap")), codes.AlreadyExists, []string{`"restored"`}},
		{"restore: onto a volume created empty", createFrom("other", 0, 0, fromSnapshot("snap")), codes.AlreadyExists, []string{`"other"`}},
		{"restore: repeated as a clone", createFrom("restored", 0, 0, fromVolume("src")), codes.AlreadyExists, []string{`"restored"`}},
		{"create: empty over a restored volume", createFrom("restored", 8<<20, 1<<20, nil), codes.AlreadyExists,
			[]string{`"restored"`, "snapshot/snap", "empty"}},
		{"restore: repeated alike", createFrom("restored", 8<<20, 1<<20, fromSnapshot("snap")), codes.OK, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			st, _ := status.FromError(err)
			if st.Code() != tt.want {
				t.Fatalf("code = %v (%v), want %v", st.Code(), err, tt.want)
			}
			if tt.want != codes.OK && st.Message() == "" {
				t.Fatal("error has no message")
			}
			for _, m := range tt.msg {
				if !strings.Contains(st.Message(), m) {
					t.Errorf("message %q does not mention %s", st.Message(), m)
				}
			}
		})
	}
	// None of the refused calls made anything.
	for _, id := range []string{"small", "r"} {
		if _, err := v.GetVolume(ctx, &nodepb.GetVolumeRequest{Ref: ref(id)}); status.Code(err) != codes.NotFound {
			t.Errorf("GetVolume(%s) after refused creates = %v, want NotFound", id, err)
		}
	}
	if _, err := v.GetSnapshot(ctx, &nodepb.GetSnapshotRequest{Ref: snapRef("s")}); status.Code(err) != codes.NotFound {
		t.Errorf("GetSnapshot(s) after refused creates = %v, want NotFound", err)
	}
	// A clone retried with size 0 after its source grew names another size (volume.proto).
	if err := createFrom("cl", 0, 0, fromVolume("src"))(); err != nil {
		t.Fatal(err)
	}
	if _, err := v.ResizeVolume(ctx, &nodepb.ResizeVolumeRequest{Ref: ref("src"), SizeBytes: 16 << 20}); err != nil {
		t.Fatal(err)
	}
	if err := createFrom("cl", 0, 0, fromVolume("src"))(); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("clone retried with size 0 after its source grew = %v, want AlreadyExists", err)
	}
	if err := createFrom("cl", 8<<20, 0, fromVolume("src"))(); err != nil {
		t.Fatalf("clone retried with its size = %v", err)
	}
}

// TestSnapshotSpaceOnEngineStore serves a file-backed engine store, whose clones share data by
// reference count, and checks the space a snapshot reports and frees; the store's deep fsck must
// be clean at the end.
func TestSnapshotSpaceOnEngineStore(t *testing.T) {
	ctx := ctxT(t)
	const unit = 4096
	eng := engine.New(engine.Settings{EngineConfig: app.EngineConfig{CacheType: "2q", MinAllocSize: unit}})
	path := filepath.Join(t.TempDir(), "dev.img")
	cluster := [16]byte{0xc1, 15: 0x0e}
	if err := eng.Mkfs(ctx, app.MkfsRequest{DevicePath: path, UUID: storeUUID, CreateSize: 512 << 20, ClusterID: cluster}); err != nil {
		t.Fatalf("Mkfs: %v", err)
	}
	ms, err := eng.Open(ctx, app.OpenRequest{DevicePath: path, ClusterID: cluster})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	mnt := ms.(*engine.Mounted)
	t.Cleanup(func() { // runs after the server has stopped
		r, err := mnt.Engine().Fsck(context.Background(), true)
		if err != nil || !r.OK() {
			t.Errorf("fsck: %v, %+v", err, r)
		}
		if err := mnt.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	se := servertest.Serve(t, mnt)
	e := &env{Env: se, ca: se.CA, addr: se.Addr, srv: se.Server}
	c := e.dial(t, "cobalt-operator")
	v := c.Volumes
	usedBytes := func() int64 {
		t.Helper()
		resp, err := c.Stores.ListStores(ctx, &nodepb.ListStoresRequest{})
		if err != nil || len(resp.GetStores()) != 1 {
			t.Fatalf("ListStores = %v, %v", resp, err)
		}
		return resp.GetStores()[0].GetUsedBytes()
	}
	base := usedBytes()
	if _, err := v.CreateVolume(ctx, &nodepb.CreateVolumeRequest{Ref: ref("vol"), SizeBytes: 64 << 20, StripeSizeBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte{0xab}, 4<<20)
	if _, err := v.Write(ctx, &nodepb.WriteRequest{Ref: ref("vol"), Data: data}); err != nil {
		t.Fatal(err)
	}
	snap, err := v.CreateSnapshot(ctx, &nodepb.CreateSnapshotRequest{Source: ref("vol"), SnapshotId: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	if s := snap.GetSnapshot(); s.GetReferencedBytes() < int64(len(data)) || s.GetExclusiveBytes() > 64<<10 {
		t.Fatalf("fresh snapshot references %d bytes, %d exclusively: want at least %d shared and next to none exclusive",
			s.GetReferencedBytes(), s.GetExclusiveBytes(), len(data))
	}
	// Overwrite 1 MiB: the snapshot now holds that MiB alone.
	if _, err := v.Write(ctx, &nodepb.WriteRequest{Ref: ref("vol"), Data: bytes.Repeat([]byte{0xcd}, 1<<20)}); err != nil {
		t.Fatal(err)
	}
	got, err := v.GetSnapshot(ctx, &nodepb.GetSnapshotRequest{Ref: snapRef("s1")})
	if err != nil {
		t.Fatal(err)
	}
	if ex := got.GetSnapshot().GetExclusiveBytes(); ex < 1<<20 || ex > 1<<20+64<<10 {
		t.Fatalf("snapshot holds %d bytes exclusively after 1 MiB of its source was overwritten, want about 1 MiB", ex)
	}
	// A restore and a clone share their data; the restore reads the old bytes.
	if _, err := v.CreateVolume(ctx, &nodepb.CreateVolumeRequest{Ref: ref("restored"), SizeBytes: 128 << 20, ContentSource: fromSnapshot("s1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.CreateVolume(ctx, &nodepb.CreateVolumeRequest{Ref: ref("cloned"), ContentSource: fromVolume("vol")}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, ctx, v, "restored", 0, int64(len(data))), data) {
		t.Fatal("restore does not read the snapshot's data")
	}
	if got := readAll(t, ctx, v, "cloned", 0, 2<<20); got[0] != 0xcd || got[2<<20-1] != 0xab {
		t.Fatal("clone does not read its source's current data")
	}
	if grown := usedBytes() - base; grown > 6<<20 {
		t.Fatalf("a 4 MiB volume, its snapshot, a restore and a clone use %d bytes, want at most 6 MiB (shared data)", grown)
	}
	// Deleting everything gives all the space back.
	if _, err := v.DeleteSnapshot(ctx, &nodepb.DeleteSnapshotRequest{Ref: snapRef("s1")}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"vol", "restored", "cloned"} {
		if _, err := v.DeleteVolume(ctx, &nodepb.DeleteVolumeRequest{Ref: ref(id)}); err != nil {
			t.Fatal(err)
		}
	}
	if after := usedBytes(); after != base {
		t.Fatalf("store uses %d bytes after deleting everything, %d before", after, base)
	}
}

// TestSnapshotOnFullStore: the in-memory store copies data when it clones, so on a store without
// room for a second copy a snapshot and a clone are refused with ResourceExhausted, and leave
// nothing behind.
func TestSnapshotOnFullStore(t *testing.T) {
	e := start(t, 8<<20)
	ctx := ctxT(t)
	v := e.client.Volumes
	if _, err := v.CreateVolume(ctx, &nodepb.CreateVolumeRequest{Ref: ref("big"), SizeBytes: 8 << 20}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Write(ctx, &nodepb.WriteRequest{Ref: ref("big"), Data: make([]byte, 5<<20)}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.CreateSnapshot(ctx, &nodepb.CreateSnapshotRequest{Source: ref("big"), SnapshotId: "s"}); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("CreateSnapshot on a full store = %v, want ResourceExhausted", err)
	}
	if _, err := v.CreateVolume(ctx, &nodepb.CreateVolumeRequest{Ref: ref("c"), ContentSource: fromVolume("big")}); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("clone on a full store = %v, want ResourceExhausted", err)
	}
	if _, err := v.GetSnapshot(ctx, &nodepb.GetSnapshotRequest{Ref: snapRef("s")}); status.Code(err) != codes.NotFound {
		t.Fatalf("GetSnapshot after a refused snapshot = %v, want NotFound", err)
	}
	if _, err := v.GetVolume(ctx, &nodepb.GetVolumeRequest{Ref: ref("c")}); status.Code(err) != codes.NotFound {
		t.Fatalf("GetVolume after a refused clone = %v, want NotFound", err)
	}
}
