package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/cobaltstore/cobalt/node-daemon/app"
	"github.com/cobaltstore/cobalt/node-daemon/engine"
	"github.com/cobaltstore/cobalt/node-daemon/objstore"
)

// makeStore makes a store with one object on a new file device; dbDir "" keeps its metadata on
// the device, as the daemon does.
func makeStore(t *testing.T, dev, dbDir string) string {
	t.Helper()
	ctx := context.Background()
	id := uuid.NewString()
	eng := engine.New(engine.Settings{EngineConfig: app.EngineConfig{CacheType: "2q", MemoryTarget: 64 << 20, MinAllocSize: 4096}})
	if err := eng.Mkfs(ctx, app.MkfsRequest{DevicePath: dev, DBDir: dbDir, UUID: id, CreateSize: 256 << 20}); err != nil {
		t.Fatal(err)
	}
	st, err := eng.Open(ctx, dev, dbDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Commit(ctx, []objstore.Op{objstore.CreateCollection("c"), objstore.Write("c", "o", 0, bytes.Repeat([]byte{7}, 1<<20))}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestFsck checks a store with its metadata on the device without any state directory (clean)
// and a device without a store (refused with a message naming the problem).
func TestFsck(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dev := filepath.Join(dir, "dev.img")
	makeStore(t, dev, "")

	var out bytes.Buffer
	if err := fsck(ctx, &out, dev, "", true); err != nil {
		t.Fatalf("fsck of a clean store: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "fsck: clean") || !strings.Contains(out.String(), "objects=1") || !strings.Contains(out.String(), "metadata in device region") {
		t.Errorf("fsck output %q lacks the clean verdict, the object or the metadata region", out.String())
	}
	if err := fsck(ctx, &out, dev, filepath.Join(dir, "no-such-state-dir"), true); err != nil {
		t.Errorf("fsck with a state directory that does not exist: %v", err)
	}

	blank := filepath.Join(dir, "blank.img")
	if err := os.WriteFile(blank, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := fsck(ctx, &out, blank, "", true); err == nil || !strings.Contains(err.Error(), "no Cobalt store label") {
		t.Errorf("fsck of a blank device: %v, want an error about the missing label", err)
	}
}

// TestFsckLegacyStore checks a store made before label version 2, whose metadata is in the state
// directory: clean with it, refused without it with a message naming the store.
func TestFsckLegacyStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dev := filepath.Join(dir, "dev.img")
	stateDir := filepath.Join(dir, "state")
	// The store's directory is named by the UUID makeStore picks: move it there after mkfs.
	tmpDB := filepath.Join(dir, "db")
	id := makeStore(t, dev, tmpDB)
	if err := os.MkdirAll(filepath.Join(stateDir, "stores", id), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmpDB, filepath.Join(stateDir, "stores", id, "db")); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	if err := fsck(ctx, &out, dev, stateDir, true); err != nil {
		t.Fatalf("fsck of a clean store: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "fsck: clean") || !strings.Contains(out.String(), "metadata in directory "+stateDir) {
		t.Errorf("fsck output %q lacks the clean verdict or the metadata directory", out.String())
	}
	for _, sd := range []string{t.TempDir(), ""} {
		if err := fsck(ctx, &out, dev, sd, true); err == nil || !strings.Contains(err.Error(), id) {
			t.Errorf("fsck with state dir %q, without the store's metadata: %v, want an error naming store %s", sd, err, id)
		}
	}
}
