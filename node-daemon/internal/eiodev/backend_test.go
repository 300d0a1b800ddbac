package eiodev

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func newTestBackend(t *testing.T, size int64) *Backend {
	t.Helper()
	b, err := NewBackend(filepath.Join(t.TempDir(), "b.img"), size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestBackendModes(t *testing.T) {
	ctx := t.Context()
	b := newTestBackend(t, 1<<20)
	data := bytes.Repeat([]byte{0x5a}, 8192)
	if err := b.WriteAt(ctx, data, 4096); err != nil {
		t.Fatalf("healthy write: %v", err)
	}
	if err := b.Flush(ctx); err != nil {
		t.Fatalf("healthy flush: %v", err)
	}
	got := make([]byte, 8192)
	if err := b.ReadAt(ctx, got, 4096); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("healthy read: %v, equal %t", err, bytes.Equal(got, data))
	}

	b.SetMode(FailWrites)
	other := bytes.Repeat([]byte{0xa5}, 8192)
	for name, err := range map[string]error{
		"write": b.WriteAt(ctx, other, 4096),
		"flush": b.Flush(ctx),
		"trim":  b.Trim(ctx, 4096, 4096),
	} {
		if !errors.Is(err, unix.EIO) {
			t.Errorf("%s with writes failing: %v, want EIO", name, err)
		}
	}
	if err := b.ReadAt(ctx, got, 4096); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read with writes failing: %v; the failed write and trim must not have touched the data (equal %t)", err, bytes.Equal(got, data))
	}

	b.SetMode(FailAll)
	if err := b.ReadAt(ctx, got, 4096); !errors.Is(err, unix.EIO) {
		t.Fatalf("read with every I/O failing: %v, want EIO", err)
	}
	if err := b.WriteAt(ctx, other, 0); !errors.Is(err, unix.EIO) {
		t.Fatalf("write with every I/O failing: %v, want EIO", err)
	}
	want := Failures{Reads: 1, Writes: 2, Flushes: 1, Trims: 1}
	if f := b.Failures(); f != want || f.Total() != 5 {
		t.Fatalf("failures = %+v (total %d), want %+v", f, f.Total(), want)
	}

	b.SetMode(Healthy)
	if err := b.ReadAt(ctx, got, 4096); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read once healthy again: %v, equal %t", err, bytes.Equal(got, data))
	}
}

func TestBackendTrimAndBlankReadZeros(t *testing.T) {
	ctx := t.Context()
	b := newTestBackend(t, 1<<20)
	data := bytes.Repeat([]byte{1}, 1<<20)
	if err := b.WriteAt(ctx, data, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.Trim(ctx, 64<<10, 64<<10); err != nil {
		t.Fatalf("trim: %v", err)
	}
	got := make([]byte, 1<<20)
	if err := b.ReadAt(ctx, got, 0); err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 64<<10)
	if !bytes.Equal(got[64<<10:128<<10], zeros) || !bytes.Equal(got[:64<<10], data[:64<<10]) || !bytes.Equal(got[128<<10:], data[128<<10:]) {
		t.Fatal("trim did not zero exactly the trimmed range")
	}
	b.SetMode(FailAll)
	if err := b.Blank(); err != nil {
		t.Fatalf("blank while failing: %v", err)
	}
	b.SetMode(Healthy)
	if err := b.ReadAt(ctx, got, 0); err != nil || !bytes.Equal(got, make([]byte, 1<<20)) {
		t.Fatalf("read after Blank: %v; want zeros", err)
	}
}

func TestBackendRefusesOutOfRange(t *testing.T) {
	ctx := t.Context()
	b := newTestBackend(t, 1<<20)
	if err := b.WriteAt(ctx, make([]byte, 4096), 1<<20-2048); err == nil || errors.Is(err, unix.EIO) {
		t.Fatalf("write past the end: %v, want a range error (not an injected EIO)", err)
	}
	if err := b.ReadAt(ctx, make([]byte, 4096), -4096); err == nil {
		t.Fatal("read at a negative offset succeeded")
	}
	if _, err := NewBackend(filepath.Join(t.TempDir(), "z.img"), 0); err == nil {
		t.Fatal("a backend of 0 bytes was made")
	}
}
