package cache

import (
	"io/fs"
	"math"
	"runtime/debug"
)

// Garbage collection under the memory target.
//
// Go's default collector setting (GOGC=100) starts a cycle each time the heap doubles its live
// size. A store's live Go heap can be a few MiB (its caches hold little while few objects are
// busy) while every 4 KiB write allocates its buffers: in a cobalt-bench run of 4 KiB random
// overwrites at QD16 (8.7 s with its set-up) the collector ran 295 times with a 4 MB heap goal.
// The memory target is memory already set aside for the stores' caches: GCSettingsFor lets the
// heap grow to ten times its live size between cycles (24 cycles in the same run, an 80 MB goal)
// and starts a cycle when the heap reaches the target (the soft memory limit), so the heap stays
// within what the target budgets. In four alternating rounds of those overwrites alone on the
// loaded development machine, QD16 and QD128 made 16-19% more IOPS with it, at about a quarter
// less CPU per write, and a p99 at QD16 of 2.3-2.9 ms instead of 4.0-4.4 ms; QD1 did not change.
// In the whole benchmark, whose larger live heap collects less often anyway, the CPU per 4 KiB
// overwrite fell by 6-22% and per 1 MiB write by 29%.
//
// Collector settings are process-wide: only main packages (and the engine the node daemon builds
// for the whole process) apply them, never a library on its own, and never when the environment
// sets them (GOGC or GOMEMLIMIT: the user's choice wins).

// GCPercent is the GOGC that GCSettingsFor sets: a cycle starts once the heap has grown by ten
// times its live size, or at the memory limit, whichever comes first.
const GCPercent = 1000

// GCSettings are the Go garbage collector's settings.
type GCSettings struct {
	// Percent is GOGC (runtime/debug.SetGCPercent).
	Percent int
	// Limit is the soft memory limit in bytes, GOMEMLIMIT (runtime/debug.SetMemoryLimit);
	// math.MaxInt64 is none.
	Limit int64
}

// DefaultGCSettings are the Go runtime's own: GOGC=100 and no memory limit.
func DefaultGCSettings() GCSettings { return GCSettings{Percent: 100, Limit: math.MaxInt64} }

// GCSettingsFor returns the settings for a process whose stores' memory targets add up to target
// bytes, in a cgroup limited to cgroupLimit bytes (0 for none). The memory limit is the target,
// and at most DefaultTargetFraction of the cgroup's limit (what pebble holds outside the Go heap
// needs the rest). Without a target (no store mounted) they are the runtime's defaults.
func GCSettingsFor(target, cgroupLimit int64) GCSettings {
	if target <= 0 {
		return DefaultGCSettings()
	}
	limit := target
	if cgroupLimit > 0 {
		limit = min(limit, int64(float64(cgroupLimit)*DefaultTargetFraction))
	}
	return GCSettings{Percent: GCPercent, Limit: limit}
}

// GCSetByEnv reports whether the environment, read through getenv (os.Getenv), sets the
// collector: GOGC or GOMEMLIMIT. A process then keeps what the user chose.
func GCSetByEnv(getenv func(string) string) bool {
	return getenv("GOGC") != "" || getenv("GOMEMLIMIT") != ""
}

// ApplyGCSettings gives the process's collector s and returns the settings it replaced. The
// limit is set first, so that the larger GOGC never runs without it.
func ApplyGCSettings(s GCSettings) GCSettings {
	prevLimit := debug.SetMemoryLimit(s.Limit)
	prevPercent := debug.SetGCPercent(s.Percent)
	return GCSettings{Percent: prevPercent, Limit: prevLimit}
}

// CgroupLimit is CgroupMemoryLimit for GCSettingsFor: the limit, or 0 when there is none or it
// cannot be read (the memory limit is then the target alone).
func CgroupLimit(fsys fs.FS) int64 {
	limit, ok, err := CgroupMemoryLimit(fsys)
	if err != nil || !ok {
		return 0
	}
	return limit
}
