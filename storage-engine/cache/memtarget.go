package cache

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// DefaultTargetFraction is the share of the container's memory limit that the caches target.
const DefaultTargetFraction = 0.8

// unlimitedV1 is the smallest cgroup v1 limit read as "no limit" (v1 reports unlimited as a
// page-rounded 2^63-1).
const unlimitedV1 = int64(1) << 62

// CgroupMemoryLimit returns the memory limit of the calling process's cgroup, read from fsys,
// a file system rooted at "/" (os.DirFS("/") in production). It tries cgroup v2
// (sys/fs/cgroup/<path>/memory.max, then the mount's root) and then v1
// (sys/fs/cgroup/memory/<path>/memory.limit_in_bytes, then the hierarchy's root), with <path>
// from proc/self/cgroup. ok is false when no limit is set ("max", or v1's unlimited value) or no
// cgroup file is found; err reports a file that exists but cannot be parsed.
func CgroupMemoryLimit(fsys fs.FS) (limit int64, ok bool, err error) {
	v2Path, v1Path := selfCgroupPaths(fsys)
	var candidates []string
	for _, p := range []string{v2Path, "/"} {
		candidates = append(candidates, path.Join("sys/fs/cgroup", p, "memory.max"))
	}
	for _, p := range []string{v1Path, "/"} {
		candidates = append(candidates, path.Join("sys/fs/cgroup/memory", p, "memory.limit_in_bytes"))
	}
	for _, name := range candidates {
		data, rerr := fs.ReadFile(fsys, name)
		if rerr != nil {
			if errors.Is(rerr, fs.ErrNotExist) {
				continue
			}
			return 0, false, fmt.Errorf("cache: reading %s: %w", name, rerr)
		}
		s := string(bytes.TrimSpace(data))
		if s == "max" {
			return 0, false, nil
		}
		n, perr := strconv.ParseInt(s, 10, 64)
		if perr != nil || n <= 0 {
			return 0, false, fmt.Errorf("cache: %s holds %q, not a memory limit", name, s)
		}
		if n >= unlimitedV1 {
			return 0, false, nil
		}
		return n, true, nil
	}
	return 0, false, nil
}

// selfCgroupPaths returns the process's cgroup v2 path and v1 memory-controller path from
// proc/self/cgroup ("" when absent).
func selfCgroupPaths(fsys fs.FS) (v2, v1 string) {
	data, err := fs.ReadFile(fsys, "proc/self/cgroup")
	if err != nil {
		return "", ""
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2 = parts[2]
			continue
		}
		for _, ctrl := range strings.Split(parts[1], ",") {
			if ctrl == "memory" {
				v1 = parts[2]
			}
		}
	}
	return v2, v1
}

// DefaultMemoryTarget returns DefaultTargetFraction of the cgroup memory limit when there is
// one, else fallback. source says which ("cgroup" or "setting").
func DefaultMemoryTarget(fsys fs.FS, fallback int64) (target int64, source string, err error) {
	limit, ok, err := CgroupMemoryLimit(fsys)
	if err != nil {
		return 0, "", err
	}
	if ok {
		return int64(float64(limit) * DefaultTargetFraction), "cgroup", nil
	}
	if fallback <= 0 {
		return 0, "", fmt.Errorf("cache: no cgroup memory limit and no memory target set")
	}
	return fallback, "setting", nil
}
