package main

import (
	"slices"
	"strings"
	"testing"
)

func TestKubeletPathsLayout(t *testing.T) {
	k := kubeletPaths{root: "/d/kubelet"}
	if got, want := k.pluginRegistry(), "/d/kubelet/plugins_registry"; got != want {
		t.Errorf("pluginRegistry() = %q, want %q", got, want)
	}
	staging := k.stagingPath("csi.cobalt.io", "pvc-demo-1")
	dir, ok := strings.CutSuffix(staging, "/globalmount")
	if !ok || !strings.HasPrefix(dir, "/d/kubelet/plugins/kubernetes.io/csi/csi.cobalt.io/") {
		t.Fatalf("stagingPath = %q, want /d/kubelet/plugins/kubernetes.io/csi/csi.cobalt.io/<sha256>/globalmount", staging)
	}
	// The directory is the hex SHA-256 of the volume handle: one per volume, stable across calls.
	hash := dir[strings.LastIndexByte(dir, '/')+1:]
	if len(hash) != 64 || strings.Trim(hash, "0123456789abcdef") != "" {
		t.Errorf("staging directory %q is not a hex SHA-256", hash)
	}
	if again := k.stagingPath("csi.cobalt.io", "pvc-demo-1"); again != staging {
		t.Errorf("stagingPath is not stable: %q then %q", staging, again)
	}
	if other := k.stagingPath("csi.cobalt.io", "pvc-demo-2"); other == staging {
		t.Errorf("two volumes share the staging path %q", other)
	}
	if got, want := k.targetPath("0b7c-uid", "pvc-demo-1"), "/d/kubelet/pods/0b7c-uid/volumes/kubernetes.io~csi/pvc-demo-1/mount"; got != want {
		t.Errorf("targetPath = %q, want %q", got, want)
	}
}

func TestRewriteKubeletArgs(t *testing.T) {
	args := []string{
		"--csi-endpoint=unix:///var/lib/kubelet/plugins/csi.cobalt.io/csi.sock",
		"--kubelet-registration-dir=/var/lib/kubelet/plugins_registry",
		"--csi-state-dir=/var/lib/kubelet/plugins/csi.cobalt.io/state",
		"--state-dir=/var/lib/cobalt",     // another host path: kept
		"--other=/var/lib/kubeletx/y",     // shares a prefix but is not below the kubelet dir
		"--root=/var/lib/kubelet",         // the directory itself
		"/var/lib/kubelet/plugins/x.sock", // a bare path argument
		"--node-name=demo-node-1",
		"--verbose",
	}
	orig := slices.Clone(args)
	got, changed := rewriteKubeletArgs(args, "/var/lib/kubelet", "/w/.demo/kubelet")
	want := []string{
		"--csi-endpoint=unix:///w/.demo/kubelet/plugins/csi.cobalt.io/csi.sock",
		"--kubelet-registration-dir=/w/.demo/kubelet/plugins_registry",
		"--csi-state-dir=/w/.demo/kubelet/plugins/csi.cobalt.io/state",
		"--state-dir=/var/lib/cobalt",
		"--other=/var/lib/kubeletx/y",
		"--root=/w/.demo/kubelet",
		"/w/.demo/kubelet/plugins/x.sock",
		"--node-name=demo-node-1",
		"--verbose",
	}
	if !slices.Equal(got, want) {
		t.Errorf("rewritten args:\n got %q\nwant %q", got, want)
	}
	if !slices.Equal(args, orig) {
		t.Errorf("rewriteKubeletArgs modified its input: %q", args)
	}
	if len(changed) != 5 || changed[0].from != orig[0] || changed[0].to != want[0] {
		t.Errorf("changed = %+v, want the 5 kubelet paths, first %q -> %q", changed, orig[0], want[0])
	}
}

func TestRewriteKubeletPathRefusesNonPaths(t *testing.T) {
	for _, v := range []string{"", "relative/var/lib/kubelet", "tcp://var/lib/kubelet", "/var/lib/kubelet/../cobalt"} {
		if got, ok := rewriteKubeletPath(v, "/var/lib/kubelet", "/demo"); ok {
			t.Errorf("rewriteKubeletPath(%q) = %q, want it left alone", v, got)
		}
	}
	// A kubelet directory of "/" would move every path: refused.
	if got, ok := rewriteKubeletPath("/etc/passwd", "/", "/demo"); ok {
		t.Errorf("kubelet dir / rewrote /etc/passwd to %q", got)
	}
}
