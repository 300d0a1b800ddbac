package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// layerEntries lists the layer's entries as "name type [linkname]".
func layerEntries(t *testing.T, layer []byte) []string {
	t.Helper()
	var out []string
	tr := tar.NewReader(bytes.NewReader(layer))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		e := h.Name + " " + string(h.Typeflag)
		if h.Typeflag == tar.TypeSymlink {
			e += " " + h.Linkname
		}
		out = append(out, e)
	}
}

// TestHostProgramLayout: a program at its real path, its library, and the links it is found
// through on a merged-/usr system.
func TestHostProgramLayout(t *testing.T) {
	dir := t.TempDir()
	bin, lib := filepath.Join(dir, "mkfs.ext4"), filepath.Join(dir, "libc.so.6")
	for _, f := range []string{bin, lib} {
		if err := os.WriteFile(f, []byte("x"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s, err := parseArgs([]string{"-o", "x.tar", "-t", "cobalt/node-daemon:e2e",
		"-f", "/usr/sbin/mkfs.ext4=" + bin, "-f", "/usr/lib/x86_64-linux-gnu/libc.so.6=" + lib,
		"-l", "/sbin=usr/sbin", "-l", "/lib=usr/lib", "-env", "PATH=/usr/sbin:/usr/bin"})
	if err != nil {
		t.Fatal(err)
	}
	layer, err := buildLayer(s)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"lib 2 usr/lib", "sbin 2 usr/sbin", "usr/ 5", "usr/lib/ 5", "usr/lib/x86_64-linux-gnu/ 5",
		"usr/lib/x86_64-linux-gnu/libc.so.6 0", "usr/sbin/ 5", "usr/sbin/mkfs.ext4 0"}
	if got := layerEntries(t, layer); !slices.Equal(got, want) {
		t.Errorf("layer entries\n got %v\nwant %v", got, want)
	}
	if env := imageEnv(s.env); !slices.Equal(env, []string{"PATH=/usr/sbin:/usr/bin"}) {
		t.Errorf("env %v: the given PATH must replace the default", env)
	}
	if env := imageEnv([]string{"A=b"}); !slices.Equal(env, []string{defaultPath, "A=b"}) {
		t.Errorf("env %v: want the default PATH first", env)
	}
}

func TestFileBelowASymlinkIsRefused(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "mount")
	if err := os.WriteFile(bin, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := parseArgs([]string{"-o", "x.tar", "-t", "x:y", "-f", "/bin/mount=" + bin, "-l", "/bin=usr/bin"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := buildLayer(s); err == nil || !strings.Contains(err.Error(), "below the symbolic link /bin") {
		t.Fatalf("buildLayer = %v, want a refusal naming /bin", err)
	}
}

func TestBadLinkFlagIsRefused(t *testing.T) {
	for _, l := range []string{"sbin=usr/sbin", "/sbin", "/=usr", "/sbin="} {
		if _, err := parseArgs([]string{"-o", "x.tar", "-t", "x:y", "-f", "/a=b", "-l", l}); err == nil {
			t.Errorf("-l %q accepted", l)
		}
	}
}
