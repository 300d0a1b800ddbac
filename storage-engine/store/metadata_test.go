package store

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/metafs"
)

func TestDefaultMetadataSize(t *testing.T) {
	for _, c := range []struct{ dev, want int64 }{
		{64 << 20, 16 << 20},       // a sixteenth is below 64 MiB: a quarter of the device
		{512 << 20, 64 << 20},      // the minimum
		{4 << 30, 256 << 20},       // a sixteenth
		{2 << 40, 64 << 30},        // the maximum
		{100<<20 + 4096, 25 << 20}, // rounded down to 64 KiB
	} {
		if got := DefaultMetadataSize(c.dev); got != c.want {
			t.Errorf("DefaultMetadataSize(%d) = %d, want %d", c.dev, got, c.want)
		}
	}
}

// TestMetadataOnDevice: a store made without a directory keeps its metadata in a region between
// the label and the data space, says so, and mounts from a fresh handle on the device alone.
func TestMetadataOnDevice(t *testing.T) {
	mem := blockdev.NewMem(testDevSize, 4096)
	if _, err := Mkfs(context.Background(), mem, "", MkfsOptions{MetadataSize: 8 << 20}); err != nil {
		t.Fatal(err)
	}
	label, err := blockdev.ReadLabel(mem)
	if err != nil {
		t.Fatal(err)
	}
	if label.Version != 2 || label.MetaOffset != 64<<10 || label.MetaLength != 8<<20 {
		t.Fatalf("label %+v, want version 2 with the region [64 KiB, +8 MiB)", label)
	}
	e := &testEnv{dev: mem.Reopen(), opts: Options{verifyShards: true}}
	s := e.open(t)
	if got := s.MetadataLocation(); got != "device region [65536, +8388608)" || !s.MetadataOnDevice() {
		t.Fatalf("MetadataLocation = %q, MetadataOnDevice = %v", got, s.MetadataOnDevice())
	}
	if s.dataStart != uint64(label.MetaOffset+label.MetaLength) {
		t.Fatalf("data starts at %d, want the region's end %d", s.dataStart, label.MetaOffset+label.MetaLength)
	}
	before := s.Metrics().MetaSync
	commit(t, s, NewTransaction().CreateCollection("c").Write("c", "o", 0, pattern(1<<20, 3)))
	// The commit's WAL sync is a sync of the metadata file system, counted in the store's metrics.
	if after := s.Metrics().MetaSync; after.Syncs <= before.Syncs {
		t.Fatalf("metadata syncs %d after a commit, %d before", after.Syncs, before.Syncs)
	}
	s = reopen(t, e, s)
	mustRead(t, s, "c", "o", 0, 0, pattern(1<<20, 3))
}

// TestMetadataInDirectory: a store made with a directory (label version 1) still mounts from it,
// and says clearly that it needs it when none is given.
func TestMetadataInDirectory(t *testing.T) {
	e := newDirEnv(t, nil, Options{}, MkfsOptions{})
	label, err := blockdev.ReadLabel(e.dev)
	if err != nil {
		t.Fatal(err)
	}
	if label.Version != 1 || label.MetaOnDevice() {
		t.Fatalf("label %+v, want version 1 without a region", label)
	}
	s := e.open(t)
	if got := s.MetadataLocation(); got != "directory db" || s.MetadataOnDevice() {
		t.Fatalf("MetadataLocation = %q, MetadataOnDevice = %v", got, s.MetadataOnDevice())
	}
	commit(t, s, NewTransaction().CreateCollection("c"))
	if got := s.Metrics().MetaSync; got != (metafs.SyncStats{}) {
		t.Fatalf("MetaSync = %+v with the metadata in a directory, want zero", got)
	}
	_, err = Open(context.Background(), e.dev, "", e.opts)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "keeps its metadata in a host directory") {
		t.Fatalf("Open without the directory = %v", err)
	}
}

func TestMkfsRefusesMetadataThatDoesNotFit(t *testing.T) {
	mem := blockdev.NewMem(testDevSize, 4096)
	if _, err := Mkfs(context.Background(), mem, "", MkfsOptions{MetadataSize: testDevSize}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Mkfs with a region as large as the device = %v, want ErrInvalid", err)
	}
}

// TestFsckChecksMetadataRegion: Fsck of a store with its metadata on the device summarizes the
// region (a store with it in a directory has no summary) and finds a label whose region is not
// the one mounted or reaches into the data space.
func TestFsckChecksMetadataRegion(t *testing.T) {
	e := newEnv(t, nil, Options{})
	s := e.open(t)
	commit(t, s, NewTransaction().CreateCollection("c").Write("c", "o", 0, pattern(100000, 1)).OmapSet("c", "o", map[string][]byte{"k": []byte("v")}))
	label, err := blockdev.ReadLabel(e.dev)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Fsck(ctx, true)
	if err != nil || !r.OK() {
		t.Fatalf("Fsck: %v %+v", err, r)
	}
	m := r.MetaRegion
	if m == nil || m.Offset != label.MetaOffset || m.Length != label.MetaLength || m.Files == 0 || m.Extents == 0 ||
		m.UsedBytes <= 0 || m.FreeBytes <= 0 || m.UsedBytes+m.FreeBytes != m.Length || m.Generation < 2 || m.JournalEntries == 0 {
		t.Fatalf("metadata region summary %+v, label %+v", m, label)
	}

	// A label whose region reaches into the data space, and is not the one mounted.
	bad := label
	bad.MetaLength += 1 << 20
	if err := blockdev.WriteLabel(e.dev, bad); err != nil {
		t.Fatal(err)
	}
	r, err = s.Fsck(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.Errors, "\n"); r.OK() || !strings.Contains(got, "past the data space's start") || !strings.Contains(got, "is mounted") {
		t.Fatalf("Fsck with a label naming another region: %q", r.Errors)
	}
	if err := blockdev.WriteLabel(e.dev, label); err != nil {
		t.Fatal(err)
	}

	d := newDirEnv(t, nil, Options{}, MkfsOptions{})
	if r, err := d.open(t).Fsck(ctx, true); err != nil || !r.OK() || r.MetaRegion != nil {
		t.Fatalf("Fsck of a store with its metadata in a directory: %v %+v", err, r)
	}
}

// TestOpenRefusesCorruptMetadataJournal writes garbage over the metadata region's journal of a
// closed store: the region's offline check and Open both fail, saying the region is corrupt.
func TestOpenRefusesCorruptMetadataJournal(t *testing.T) {
	mem := blockdev.NewMem(testDevSize, 4096)
	e := newEnv(t, mem, Options{})
	s, err := Open(ctx, e.dev, e.dir, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	commit(t, s, NewTransaction().CreateCollection("c").Write("c", "o", 0, pattern(10000, 1)))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	label, err := blockdev.ReadLabel(mem)
	if err != nil {
		t.Fatal(err)
	}
	region := metafs.Extent{Offset: label.MetaOffset, Length: label.MetaLength}
	mo := metaOptions(label.UUID, region.Length)
	rep, err := metafs.Check(mem, region, mo)
	if err != nil {
		t.Fatalf("metafs check of a cleanly closed store: %v\n%s", err, rep)
	}
	garbage := blockdev.AlignedBuffer(4096)
	for i := range garbage {
		garbage[i] = byte(i*31 + 7)
	}
	if _, err := mem.WriteAt(garbage, rep.Journal.Offset); err != nil {
		t.Fatal(err)
	}
	if rep, err := metafs.Check(mem, region, mo); !errors.Is(err, metafs.ErrCorrupt) {
		t.Fatalf("metafs check after the journal was overwritten: %v\n%s", err, rep)
	}
	_, err = Open(ctx, mem, "", e.opts)
	t.Logf("Open: %v", err)
	if !errors.Is(err, metafs.ErrCorrupt) || !strings.Contains(err.Error(), "mount metadata region") {
		t.Fatalf("Open after the journal was overwritten: %v, want a metadata region mount error wrapping metafs.ErrCorrupt", err)
	}
}
