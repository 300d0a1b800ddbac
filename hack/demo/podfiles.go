package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// fileSum is a file the demo wrote on a volume, by its path relative to the mount.
type fileSum struct {
	name   string
	size   int64
	sha256 string
}

// podFiles are what the demo writes on the Pod's mount: a small text file and two random files,
// one of them not a multiple of the block size, in a subdirectory.
var podFiles = []struct {
	name string
	size int64 // random bytes; 0 for the text file
}{
	{name: "hello.txt"},
	{name: "data/random-1MiB.bin", size: 1 << 20},
	{name: "data/random-3MiB+123.bin", size: 3<<20 + 123},
}

// writeFilesSynced writes podFiles under dir as an application that cares about its data does:
// each file is fsync'd, and so is each directory that got a new entry. It returns their sums.
func writeFilesSynced(dir string) ([]fileSum, error) {
	var sums []fileSum
	dirs := map[string]bool{dir: true}
	for _, f := range podFiles {
		path := filepath.Join(dir, f.name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("create the directory of %s: %w", path, err)
		}
		dirs[filepath.Dir(path)] = true
		src := io.LimitReader(rand.Reader, f.size)
		size := f.size
		if f.size == 0 {
			text := "Written through csi.cobalt.io by `make demo` at " + time.Now().Format(time.RFC3339) + "\n"
			src, size = strings.NewReader(text), int64(len(text))
		}
		sum, err := writeSynced(path, src)
		if err != nil {
			return nil, err
		}
		sums = append(sums, fileSum{name: f.name, size: size, sha256: sum})
	}
	for d := range dirs {
		if err := syncDir(d); err != nil {
			return nil, err
		}
	}
	return sums, nil
}

// writeSynced writes src to a new file at path, fsyncs it and returns its sha256.
func writeSynced(path string, src io.Reader) (string, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return "", fmt.Errorf("create %s: %w", path, err)
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), src); err != nil {
		_ = f.Close()
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return "", fmt.Errorf("fsync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("close %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// syncDir fsyncs a directory, making the entries created in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// verifyFiles checks that every file in sums is under dir with its size and sha256.
func verifyFiles(dir string, sums []fileSum) error {
	var errs []error
	for _, s := range sums {
		path := filepath.Join(dir, s.name)
		got, err := fileSHA256(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if got != s.sha256 {
			errs = append(errs, fmt.Errorf("%s: sha256 %s, written %s", path, got, s.sha256))
		}
	}
	return errors.Join(errs...)
}
