package controller

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestVolumeName(t *testing.T) {
	long := strings.Repeat("a", 70)
	for _, tc := range []struct {
		in, want   string
		wantPrefix string // when the name is derived: what precedes the hash
	}{
		{in: "pvc-0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", want: "pvc-0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"},
		{in: "sanity.vol-1", want: "sanity.vol-1"},
		{in: "Sanity-Controller_Create", wantPrefix: "sanity-controller-create-"},
		{in: "a//b", wantPrefix: "a-b-"},
		{in: "-x-", wantPrefix: "x-"},
		{in: "___", wantPrefix: "csi-"},
		{in: long, wantPrefix: strings.Repeat("a", 52) + "-"},
		{in: "ends.with.dot.", wantPrefix: "ends-with-dot-"},
	} {
		got := VolumeName(tc.in)
		if errs := validation.IsDNS1123Label(got); len(errs) > 0 && tc.want == "" {
			t.Errorf("VolumeName(%q) = %q, not a DNS-1123 label: %v", tc.in, got, errs)
		}
		if len(got) > 63 {
			t.Errorf("VolumeName(%q) = %q, longer than 63", tc.in, got)
		}
		switch {
		case tc.want != "" && got != tc.want:
			t.Errorf("VolumeName(%q) = %q, want %q", tc.in, got, tc.want)
		case tc.wantPrefix != "" && (!strings.HasPrefix(got, tc.wantPrefix) || len(got) != len(tc.wantPrefix)+nameHashLength):
			t.Errorf("VolumeName(%q) = %q, want %q + %d hex digits", tc.in, got, tc.wantPrefix, nameHashLength)
		}
		if again := VolumeName(tc.in); again != got {
			t.Errorf("VolumeName(%q) is not stable: %q then %q", tc.in, got, again)
		}
	}
	// Names that sanitize alike still get different Volume names.
	if a, b := VolumeName("My_Vol"), VolumeName("my-vol!"); a == b || a == "my-vol" || b == "my-vol" {
		t.Errorf("distinct request names share a Volume name: %q, %q", a, b)
	}
}
