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

// TestFsck checks a store with data (clean), a device without a store and a state directory
// without the store's metadata (both refused with a message naming the problem).
func TestFsck(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dev := filepath.Join(dir, "dev.img")
	stateDir := filepath.Join(dir, "state")
	id := uuid.NewString()
	eng := engine.New(engine.Settings{EngineConfig: app.EngineConfig{CacheType: "2q", MemoryTarget: 64 << 20, MinAllocSize: 4096}})
	dbDir := filepath.Join(stateDir, "stores", id, "db")
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

	var out bytes.Buffer
	if err := fsck(ctx, &out, dev, stateDir, true); err != nil {
		t.Fatalf("fsck of a clean store: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "fsck: clean") || !strings.Contains(out.String(), "objects=1") {
		t.Errorf("fsck output %q lacks the clean verdict or the object", out.String())
	}

	blank := filepath.Join(dir, "blank.img")
	if err := os.WriteFile(blank, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := fsck(ctx, &out, blank, stateDir, true); err == nil || !strings.Contains(err.Error(), "no Cobalt store label") {
		t.Errorf("fsck of a blank device: %v, want an error about the missing label", err)
	}
	if err := fsck(ctx, &out, dev, t.TempDir(), true); err == nil || !strings.Contains(err.Error(), id) {
		t.Errorf("fsck without the store's metadata: %v, want an error naming store %s", err, id)
	}
}
