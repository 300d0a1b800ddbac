package cache

import (
	"os"
	"testing"
	"testing/fstest"
)

func TestCgroupMemoryLimit(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	for _, tc := range []struct {
		name    string
		fs      fstest.MapFS
		limit   int64
		ok      bool
		wantErr bool
	}{
		{"no cgroup files", fstest.MapFS{}, 0, false, false},
		{"v2 at the root", fstest.MapFS{
			"proc/self/cgroup":         file("0::/\n"),
			"sys/fs/cgroup/memory.max": file("1073741824\n"),
		}, 1 << 30, true, false},
		{"v2 nested cgroup wins over the root", fstest.MapFS{
			"proc/self/cgroup":                          file("0::/kubepods/pod1/c1\n"),
			"sys/fs/cgroup/kubepods/pod1/c1/memory.max": file("536870912"),
			"sys/fs/cgroup/memory.max":                  file("max"),
		}, 512 << 20, true, false},
		{"v2 unlimited", fstest.MapFS{
			"proc/self/cgroup":         file("0::/\n"),
			"sys/fs/cgroup/memory.max": file("max\n"),
		}, 0, false, false},
		{"v1 limited, named controller list", fstest.MapFS{
			"proc/self/cgroup": file("4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n0::/\n"),
			"sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": file("2147483648\n"),
		}, 2 << 30, true, false},
		{"v1 namespaced: falls back to the hierarchy root", fstest.MapFS{
			"proc/self/cgroup":                           file("4:memory:/process_api/xyz\n"),
			"sys/fs/cgroup/memory/memory.limit_in_bytes": file("4294967296\n"),
		}, 4 << 30, true, false},
		{"v1 unlimited", fstest.MapFS{
			"sys/fs/cgroup/memory/memory.limit_in_bytes": file("9223372036854771712\n"),
		}, 0, false, false},
		{"garbage", fstest.MapFS{
			"sys/fs/cgroup/memory.max": file("lots"),
		}, 0, false, true},
		{"negative", fstest.MapFS{
			"sys/fs/cgroup/memory/memory.limit_in_bytes": file("-5"),
		}, 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			limit, ok, err := CgroupMemoryLimit(tc.fs)
			if (err != nil) != tc.wantErr || limit != tc.limit || ok != tc.ok {
				t.Fatalf("got %d, %v, %v; want %d, %v, error %v", limit, ok, err, tc.limit, tc.ok, tc.wantErr)
			}
		})
	}
}

func TestDefaultMemoryTarget(t *testing.T) {
	limited := fstest.MapFS{"sys/fs/cgroup/memory.max": &fstest.MapFile{Data: []byte("1000\n")}}
	if got, src, err := DefaultMemoryTarget(limited, 5); err != nil || got != 800 || src != "cgroup" {
		t.Fatalf("limited: %d %s %v", got, src, err)
	}
	if got, src, err := DefaultMemoryTarget(fstest.MapFS{}, 5); err != nil || got != 5 || src != "setting" {
		t.Fatalf("unlimited: %d %s %v", got, src, err)
	}
	if _, _, err := DefaultMemoryTarget(fstest.MapFS{}, 0); err == nil {
		t.Fatal("no limit and no setting accepted")
	}
	// The real machine must parse without error whatever its cgroup setup is.
	if _, _, err := CgroupMemoryLimit(os.DirFS("/")); err != nil {
		t.Fatalf("this machine's cgroup: %v", err)
	}
}
