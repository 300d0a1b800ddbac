package store

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
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
	commit(t, s, NewTransaction().CreateCollection("c").Write("c", "o", 0, pattern(1<<20, 3)))
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
