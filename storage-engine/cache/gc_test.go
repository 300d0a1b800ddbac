package cache

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestGCSettingsFor(t *testing.T) {
	const gib = int64(1) << 30
	for _, tt := range []struct {
		name           string
		target, cgroup int64
		want           GCSettings
	}{
		{"no store: the runtime's defaults", 0, 0, GCSettings{Percent: 100, Limit: math.MaxInt64}},
		{"no store in a cgroup: the runtime's defaults", 0, 4 * gib, GCSettings{Percent: 100, Limit: math.MaxInt64}},
		{"the target is the limit", gib, 0, GCSettings{Percent: GCPercent, Limit: gib}},
		{"a cgroup larger than the target", gib, 4 * gib, GCSettings{Percent: GCPercent, Limit: gib}},
		{"a cgroup too small for the target keeps room outside the Go heap", 2 * gib, 2 * gib, GCSettings{Percent: GCPercent, Limit: 2 * gib * 8 / 10}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := GCSettingsFor(tt.target, tt.cgroup); got != tt.want {
				t.Fatalf("GCSettingsFor(%d, %d) = %+v, want %+v", tt.target, tt.cgroup, got, tt.want)
			}
		})
	}
}

func TestGCSetByEnv(t *testing.T) {
	for _, tt := range []struct {
		env  map[string]string
		want bool
	}{
		{map[string]string{}, false},
		{map[string]string{"GOMAXPROCS": "8"}, false},
		{map[string]string{"GOGC": "200"}, true},
		{map[string]string{"GOGC": "off"}, true},
		{map[string]string{"GOMEMLIMIT": "1GiB"}, true},
	} {
		if got := GCSetByEnv(func(k string) string { return tt.env[k] }); got != tt.want {
			t.Errorf("GCSetByEnv(%v) = %v, want %v", tt.env, got, tt.want)
		}
	}
}

// TestApplyGCSettings sets the test process's collector and puts the previous settings back.
func TestApplyGCSettings(t *testing.T) {
	want := GCSettings{Percent: GCPercent, Limit: 3 << 30}
	prev := ApplyGCSettings(want)
	defer ApplyGCSettings(prev)
	if got := debug.SetMemoryLimit(-1); got != want.Limit {
		t.Errorf("memory limit = %d, want %d", got, want.Limit)
	}
	// SetGCPercent with a negative value turns the collector off: read it by setting it back.
	if got := debug.SetGCPercent(want.Percent); got != want.Percent {
		t.Errorf("GOGC = %d, want %d", got, want.Percent)
	}
	if back := ApplyGCSettings(prev); back != want {
		t.Errorf("ApplyGCSettings returned %+v as the settings it replaced, want %+v", back, want)
	}
	ApplyGCSettings(prev)
}
