package engine

import (
	"fmt"
	"testing"

	"github.com/cobaltstore/cobalt/node-daemon/app"
	"github.com/cobaltstore/cobalt/storage-engine/cache"
	"github.com/cobaltstore/cobalt/storage-engine/kv"
	"github.com/cobaltstore/cobalt/storage-engine/store"
)

// recordGC is an apply function that records the settings instead of giving them to the runtime.
type recordGC struct{ applied []cache.GCSettings }

func (r *recordGC) apply(s cache.GCSettings) cache.GCSettings {
	prev := cache.DefaultGCSettings()
	if n := len(r.applied); n > 0 {
		prev = r.applied[n-1]
	}
	r.applied = append(r.applied, s)
	return prev
}

func TestGCBudgetFollowsTheMountedStores(t *testing.T) {
	const mib = int64(1) << 20
	set := func(limit int64) cache.GCSettings { return cache.GCSettings{Percent: cache.GCPercent, Limit: limit} }
	type step struct {
		mount  bool
		target int64
		want   cache.GCSettings
		// stuck closes the store abandoned on a stuck metadata database: its memory stays.
		stuck bool
	}
	for _, tt := range []struct {
		name   string
		cgroup int64
		steps  []step
		// applied is how many times the runtime's settings changed.
		applied int
	}{{
		name: "targets add up, and the defaults come back with no store",
		steps: []step{
			{mount: true, target: 1024 * mib, want: set(1024 * mib)},
			{mount: true, target: 512 * mib, want: set(1536 * mib)},
			{mount: false, target: 1024 * mib, want: set(512 * mib)},
			{mount: false, target: 512 * mib, want: cache.DefaultGCSettings()},
		},
		applied: 4,
	}, {
		name:   "the cgroup caps the limit; an unchanged limit is not applied again",
		cgroup: 2048 * mib,
		steps: []step{
			{mount: true, target: 1024 * mib, want: set(1024 * mib)},
			{mount: true, target: 1024 * mib, want: set(2048 * mib * 8 / 10)},
			{mount: true, target: 1024 * mib, want: set(2048 * mib * 8 / 10)},
			{mount: false, target: 1024 * mib, want: set(2048 * mib * 8 / 10)},
		},
		applied: 2,
	}, {
		name: "an abandoned store stays counted: its memory is held until the process exits",
		steps: []step{
			{mount: true, target: 1024 * mib, want: set(1024 * mib)},
			{mount: true, target: 512 * mib, want: set(1536 * mib)},
			{target: 1024 * mib, want: set(1536 * mib), stuck: true},
			{target: 512 * mib, want: set(1024 * mib)},
		},
		applied: 3,
	}} {
		t.Run(tt.name, func(t *testing.T) {
			var rec recordGC
			b := newGCBudget(rec.apply, tt.cgroup)
			for i, s := range tt.steps {
				var got cache.GCSettings
				switch {
				case s.mount:
					got = b.mounted(s.target)
				case s.stuck:
					got = b.closed(s.target, fmt.Errorf("close: the store is abandoned: %w: %w", store.ErrFailed, kv.ErrStuck))
				default:
					got = b.closed(s.target, nil)
				}
				if got != s.want {
					t.Fatalf("step %d: settings %+v, want %+v", i, got, s.want)
				}
				if n := len(rec.applied); n == 0 || rec.applied[n-1] != s.want {
					t.Fatalf("step %d: the runtime was given %+v, want %+v last", i, rec.applied, s.want)
				}
			}
			if len(rec.applied) != tt.applied {
				t.Fatalf("settings applied %d times (%+v), want %d", len(rec.applied), rec.applied, tt.applied)
			}
		})
	}
}

// TestEngineCountsMountedStoresInItsGCBudget: a store counts its memory target in the budget
// from Open to Close, once even when closed twice.
func TestEngineCountsMountedStoresInItsGCBudget(t *testing.T) {
	const target = 96 << 20
	var rec recordGC
	e := New(Settings{EngineConfig: app.EngineConfig{CacheType: "2q", MinAllocSize: 4096, MemoryTarget: target}, GC: newGCBudget(rec.apply, 0)})
	a, b := newDevice(t, e, 64<<20), newDevice(t, e, 64<<20)
	ma := open(t, e, a)
	mb := open(t, e, b)
	want := []cache.GCSettings{{Percent: cache.GCPercent, Limit: target}, {Percent: cache.GCPercent, Limit: 2 * target}}
	if len(rec.applied) != 2 || rec.applied[0] != want[0] || rec.applied[1] != want[1] {
		t.Fatalf("after mounting two stores the runtime was given %+v, want %+v", rec.applied, want)
	}
	if err := ma.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	_ = ma.Close() // a second Close counts nothing out again, whatever it returns
	if last := rec.applied[len(rec.applied)-1]; last.Limit != target {
		t.Fatalf("with one store left mounted the runtime was given %+v last, want the limit %d", rec.applied, target)
	}
	if err := mb.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	want = append(want, cache.GCSettings{Percent: cache.GCPercent, Limit: target}, cache.DefaultGCSettings())
	if len(rec.applied) != len(want) {
		t.Fatalf("after closing both (one of them twice) the runtime was given %+v, want %+v", rec.applied, want)
	}
	for i := range want {
		if rec.applied[i] != want[i] {
			t.Fatalf("after closing both (one of them twice) the runtime was given %+v, want %+v", rec.applied, want)
		}
	}
}
