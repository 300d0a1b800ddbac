package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteFilesSyncedThenVerify(t *testing.T) {
	dir := t.TempDir()
	sums, err := writeFilesSynced(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != len(podFiles) {
		t.Fatalf("got %d sums for %d files", len(sums), len(podFiles))
	}
	for _, s := range sums {
		fi, err := os.Stat(filepath.Join(dir, s.name))
		if err != nil || fi.Size() != s.size || len(s.sha256) != 64 {
			t.Errorf("%s: stat %v, size %d, recorded %d, sha256 %q", s.name, err, fi.Size(), s.size, s.sha256)
		}
	}
	if err := verifyFiles(dir, sums); err != nil {
		t.Fatalf("verify right after writing: %v", err)
	}

	// One changed byte is found and named. The byte is flipped, not overwritten with a constant:
	// the file is random, and a constant would leave it unchanged once in 256 runs.
	changed := filepath.Join(dir, sums[1].name)
	f, err := os.OpenFile(changed, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, 4096); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, 4096); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// ... and so is a missing file.
	missing := filepath.Join(dir, sums[2].name)
	if err := os.Remove(missing); err != nil {
		t.Fatal(err)
	}
	err = verifyFiles(dir, sums)
	if err == nil || !strings.Contains(err.Error(), changed) || !strings.Contains(err.Error(), missing) {
		t.Errorf("verify after a change and a removal: %v; want both %s and %s named", err, changed, missing)
	}
	if strings.Contains(err.Error(), sums[0].name) {
		t.Errorf("verify blames the unchanged %s: %v", sums[0].name, err)
	}
}
