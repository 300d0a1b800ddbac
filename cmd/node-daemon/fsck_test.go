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

// fsckTestCluster is the cluster of the stores makeStore makes with their metadata on the device.
var fsckTestCluster = [16]byte{0x0f, 0x3c, 0x2a, 0x9e, 0x5b, 0x1d, 0x4e, 0x7a, 0x9c, 0x8b, 0x2d, 0x6f, 0x1e, 0x0a, 0x7b, 0x34}

// makeStore makes a store with one object on a new file device; dbDir "" keeps its metadata on
// the device, as the daemon does.
func makeStore(t *testing.T, dev, dbDir string) string {
	t.Helper()
	ctx := context.Background()
	id := uuid.NewString()
	eng := engine.New(engine.Settings{EngineConfig: app.EngineConfig{CacheType: "2q", MemoryTarget: 64 << 20, MinAllocSize: 4096}})
	req := app.MkfsRequest{DevicePath: dev, DBDir: dbDir, UUID: id, CreateSize: 256 << 20}
	if dbDir == "" {
		req.ClusterID = fsckTestCluster // as the daemon makes stores now (label version 3)
	}
	if err := eng.Mkfs(ctx, req); err != nil {
		t.Fatal(err)
	}
	st, err := eng.Open(ctx, app.OpenRequest{DevicePath: dev, LegacyDBDir: dbDir, ClusterID: req.ClusterID})
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
	if err := fsck(ctx, &out, dev, "", "", true); err != nil {
		t.Fatalf("fsck of a clean store: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "fsck: clean") || !strings.Contains(out.String(), "objects=1") || !strings.Contains(out.String(), "metadata in device region") ||
		!strings.Contains(out.String(), "cluster 0f3c2a9e-5b1d-4e7a-9c8b-2d6f1e0a7b34") {
		t.Errorf("fsck output %q lacks the clean verdict, the object, the metadata region or the cluster", out.String())
	}
	if err := fsck(ctx, &out, dev, "", filepath.Join(dir, "no-such-state-dir"), true); err != nil {
		t.Errorf("fsck with a state directory that does not exist: %v", err)
	}

	blank := filepath.Join(dir, "blank.img")
	if err := os.WriteFile(blank, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := fsck(ctx, &out, blank, "", "", true); err == nil || !strings.Contains(err.Error(), "no Cobalt store label") {
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
	if err := fsck(ctx, &out, dev, "", stateDir, true); err != nil {
		t.Fatalf("fsck of a clean store: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "fsck: clean") || !strings.Contains(out.String(), "metadata in directory "+stateDir) || !strings.Contains(out.String(), "cluster none (label version 1") {
		t.Errorf("fsck output %q lacks the clean verdict or the metadata directory", out.String())
	}
	for _, sd := range []string{t.TempDir(), ""} {
		if err := fsck(ctx, &out, dev, "", sd, true); err == nil || !strings.Contains(err.Error(), id) {
			t.Errorf("fsck with state dir %q, without the store's metadata: %v, want an error naming store %s", sd, err, id)
		}
	}
}

// TestFsckSeparateMetadataDevice: a store whose metadata is on a separate device is checked with
// --metadata-device; without it, or given the metadata device as the store, fsck says what to do.
func TestFsckSeparateMetadataDevice(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dev, meta := filepath.Join(dir, "dev.img"), filepath.Join(dir, "meta.img")
	if err := os.WriteFile(meta, make([]byte, 32<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	id := uuid.NewString()
	eng := engine.New(engine.Settings{EngineConfig: app.EngineConfig{CacheType: "2q", MemoryTarget: 64 << 20, MinAllocSize: 4096}})
	if err := eng.Mkfs(ctx, app.MkfsRequest{DevicePath: dev, UUID: id, CreateSize: 256 << 20, ClusterID: fsckTestCluster, MetadataDevicePath: meta}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := fsck(ctx, &out, dev, meta, "", true); err != nil {
		t.Fatalf("fsck with the metadata device: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "fsck: clean") || !strings.Contains(out.String(), "metadata in metadata device region") {
		t.Errorf("fsck output %q lacks the clean verdict or the metadata device", out.String())
	}
	if err := fsck(ctx, &out, dev, "", "", true); err == nil || !strings.Contains(err.Error(), "give it with --metadata-device") {
		t.Errorf("fsck without the metadata device: %v", err)
	}
	if err := fsck(ctx, &out, meta, "", "", true); err == nil || !strings.Contains(err.Error(), "is the metadata device of store "+id) {
		t.Errorf("fsck of the metadata device as a store: %v", err)
	}
}
