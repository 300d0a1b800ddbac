// Command mkimage packs files from the host (static binaries, mostly) into a single-layer
// container image and writes it as a docker-archive tarball that `ctr images import` and
// `docker load` accept. It needs no registry, no daemon and no base image: the e2e harness uses
// it to build the manager and node-daemon images offline.
//
//	mkimage -o manager.tar -t cobalt/manager:e2e -entrypoint /manager -user 65532:65532 \
//	    -f /manager=bin/e2e/manager -dir /tmp:1777
//
// Host programs with their shared libraries are packed the same way (-f for each file, -l for
// the /bin -> usr/bin style links they are found through; hack/cluster/images.sh resolves them
// with ldd), and -env PATH=... replaces the default PATH.
//
// Invariants: the layer holds exactly the -f files, -dir directories and -l symbolic links (plus
// their parent directories, mode 0755, owned by root); file modes come from the host files (a
// host symlink given to -f is packed as the file it points to); every timestamp is the Unix
// epoch, so the same inputs give the same image digest.
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// multiFlag collects a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// spec is what the command line asks for.
type spec struct {
	out, tag, user, workdir string
	entrypoint, cmd, env    []string
	files                   []fileEntry
	dirs                    []dirEntry
	links                   []linkEntry
}

// linkEntry creates the symbolic link path -> target in the image.
type linkEntry struct{ path, target string }

// fileEntry copies host file src to dst in the image.
type fileEntry struct{ dst, src string }

// dirEntry creates an empty directory in the image.
type dirEntry struct {
	path string
	mode int64
}

func main() {
	s, err := parseArgs(os.Args[1:])
	if err == nil {
		err = run(s)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func parseArgs(args []string) (spec, error) {
	var (
		s                                         spec
		files, dirs, links, env, entrypoint, cmds multiFlag
	)
	fs := flag.NewFlagSet("mkimage", flag.ContinueOnError)
	fs.StringVar(&s.out, "o", "", "output tarball (docker-archive)")
	fs.StringVar(&s.tag, "t", "", "image reference, e.g. cobalt/manager:e2e")
	fs.StringVar(&s.user, "user", "", "user[:group] the image runs as")
	fs.StringVar(&s.workdir, "workdir", "/", "working directory")
	fs.Var(&entrypoint, "entrypoint", "entrypoint argument (repeat for more)")
	fs.Var(&cmds, "cmd", "default command argument (repeat for more)")
	fs.Var(&env, "env", "KEY=VALUE environment variable (repeatable)")
	fs.Var(&files, "f", "/path/in/image=host/file (repeatable)")
	fs.Var(&dirs, "dir", "/path/in/image[:octal mode] empty directory (repeatable)")
	fs.Var(&links, "l", "/path/in/image=target symbolic link, e.g. /sbin=usr/sbin (repeatable)")
	if err := fs.Parse(args); err != nil {
		return s, err
	}
	if s.out == "" || s.tag == "" || len(files) == 0 {
		return s, errors.New("-o, -t and at least one -f are required")
	}
	s.entrypoint, s.cmd, s.env = entrypoint, cmds, env
	for _, f := range files {
		dst, src, ok := strings.Cut(f, "=")
		if !ok || !path.IsAbs(dst) || src == "" {
			return s, fmt.Errorf("-f %q: want /path/in/image=host/file", f)
		}
		s.files = append(s.files, fileEntry{dst: path.Clean(dst), src: src})
	}
	for _, d := range dirs {
		p, modeStr, hasMode := strings.Cut(d, ":")
		mode := int64(0o755)
		if hasMode {
			m, err := strconv.ParseInt(modeStr, 8, 32)
			if err != nil {
				return s, fmt.Errorf("-dir %q: mode: %w", d, err)
			}
			mode = m
		}
		if !path.IsAbs(p) {
			return s, fmt.Errorf("-dir %q: path must be absolute", d)
		}
		s.dirs = append(s.dirs, dirEntry{path: path.Clean(p), mode: mode})
	}
	for _, l := range links {
		p, target, ok := strings.Cut(l, "=")
		if !ok || !path.IsAbs(p) || path.Clean(p) == "/" || target == "" {
			return s, fmt.Errorf("-l %q: want /path/in/image=target", l)
		}
		s.links = append(s.links, linkEntry{path: path.Clean(p), target: target})
	}
	return s, nil
}

func run(s spec) error {
	ref, err := name.NewTag(s.tag)
	if err != nil {
		return fmt.Errorf("image reference %q: %w", s.tag, err)
	}
	layerTar, err := buildLayer(s)
	if err != nil {
		return err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return fmt.Errorf("layer: %w", err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return fmt.Errorf("append layer: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("image config: %w", err)
	}
	cfg = cfg.DeepCopy()
	// containerd picks images by platform; an image without one needs --all-platforms to import.
	cfg.OS, cfg.Architecture = "linux", runtime.GOARCH
	cfg.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	cfg.Config.Entrypoint = s.entrypoint
	cfg.Config.Cmd = s.cmd
	cfg.Config.User = s.user
	cfg.Config.WorkingDir = s.workdir
	cfg.Config.Env = imageEnv(s.env)
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return fmt.Errorf("set image config: %w", err)
	}
	if err := tarball.WriteToFile(s.out, ref, img); err != nil {
		return fmt.Errorf("write %s: %w", s.out, err)
	}
	return nil
}

// defaultPath is the image's PATH unless -env sets one.
const defaultPath = "PATH=/usr/local/bin:/usr/bin:/bin"

// imageEnv is the image's environment: env, with defaultPath first unless env sets PATH itself
// (two PATH entries would leave the runtime to pick one).
func imageEnv(env []string) []string {
	for _, e := range env {
		if strings.HasPrefix(e, "PATH=") {
			return env
		}
	}
	return append([]string{defaultPath}, env...)
}

// buildLayer returns the layer's uncompressed tar: parent directories first, then the
// directories and files asked for, in path order.
func buildLayer(s spec) ([]byte, error) {
	type entry struct {
		hdr *tar.Header
		src string
	}
	entries := map[string]entry{}
	epoch := time.Unix(0, 0).UTC()
	addParents := func(p string) {
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			if _, ok := entries[d]; !ok {
				entries[d] = entry{hdr: &tar.Header{Typeflag: tar.TypeDir, Name: d[1:] + "/", Mode: 0o755, ModTime: epoch}}
			}
		}
	}
	for _, d := range s.dirs {
		addParents(d.path)
		entries[d.path] = entry{hdr: &tar.Header{Typeflag: tar.TypeDir, Name: d.path[1:] + "/", Mode: d.mode, ModTime: epoch}}
	}
	for _, l := range s.links {
		addParents(l.path)
		entries[l.path] = entry{hdr: &tar.Header{Typeflag: tar.TypeSymlink, Name: l.path[1:], Linkname: l.target, Mode: 0o777, ModTime: epoch}}
	}
	for _, f := range s.files {
		st, err := os.Stat(f.src)
		if err != nil {
			return nil, fmt.Errorf("-f %s: %w", f.src, err)
		}
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("-f %s: not a regular file", f.src)
		}
		addParents(f.dst)
		entries[f.dst] = entry{
			hdr: &tar.Header{Typeflag: tar.TypeReg, Name: f.dst[1:], Mode: int64(st.Mode().Perm()), Size: st.Size(), ModTime: epoch},
			src: f.src,
		}
	}
	paths := make([]string, 0, len(entries))
	for p := range entries {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	// A file or directory below a symbolic link of the layer would land wherever the link points
	// when the layer is unpacked: refuse it instead of packing something else than was asked.
	for _, p := range paths {
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			if e := entries[d]; e.hdr.Typeflag == tar.TypeSymlink {
				return nil, fmt.Errorf("%s is below the symbolic link %s: give its real path", p, d)
			}
		}
	}

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		e := entries[p]
		if err := tw.WriteHeader(e.hdr); err != nil {
			return nil, fmt.Errorf("tar header %s: %w", p, err)
		}
		if e.src == "" {
			continue
		}
		if err := copyFile(tw, e.src, e.hdr.Size); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("close layer tar: %w", err)
	}
	return buf.Bytes(), nil
}

// copyFile writes exactly size bytes of src into w; a file that changed size since it was
// stat'ed is an error rather than a corrupt layer.
func copyFile(w io.Writer, src string, size int64) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("open %s: %w", src, err)
	}
	defer f.Close()
	n, err := io.Copy(w, io.LimitReader(f, size))
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if n != size {
		return fmt.Errorf("copy %s: file shrank from %d to %d bytes", src, size, n)
	}
	return nil
}
