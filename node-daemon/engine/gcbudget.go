package engine

import (
	"errors"
	"os"
	"sync"

	"github.com/cobaltstore/cobalt/storage-engine/cache"
	"github.com/cobaltstore/cobalt/storage-engine/kv"
)

// GCBudget keeps the process's Go garbage collector set for the memory targets of the stores
// mounted in it (cache.GCSettingsFor): the heap may grow into the memory set aside for their
// caches between collections, instead of collecting each time it doubles a small live size. The
// node daemon makes one for the process and gives it to every engine it builds (Settings.GC).
type GCBudget struct {
	apply       func(cache.GCSettings) cache.GCSettings
	cgroupLimit int64

	mu struct {
		sync.Mutex
		stores  int
		targets int64
		applied cache.GCSettings
	}
}

// NewGCBudget returns the process's budget, which applies the collector's settings with
// cache.ApplyGCSettings and caps the limit under the cgroup's memory limit. It returns nil,
// which leaves the collector alone, when the environment sets it (GOGC or GOMEMLIMIT).
func NewGCBudget() *GCBudget {
	if cache.GCSetByEnv(os.Getenv) {
		return nil
	}
	return newGCBudget(cache.ApplyGCSettings, cache.CgroupLimit(os.DirFS("/")))
}

func newGCBudget(apply func(cache.GCSettings) cache.GCSettings, cgroupLimit int64) *GCBudget {
	b := &GCBudget{apply: apply, cgroupLimit: cgroupLimit}
	b.mu.applied = cache.DefaultGCSettings()
	return b
}

// mounted counts a store with this memory target in, and returns the settings now in effect.
func (b *GCBudget) mounted(target int64) cache.GCSettings { return b.change(1, target) }

// closed counts out a store with this memory target whose Close returned closeErr, and returns
// the settings now in effect. A store abandoned on a stuck metadata database (kv.ErrStuck) keeps
// its memory until the process exits, so it stays counted.
func (b *GCBudget) closed(target int64, closeErr error) cache.GCSettings {
	if errors.Is(closeErr, kv.ErrStuck) {
		return b.change(0, 0)
	}
	return b.change(-1, -target)
}

func (b *GCBudget) change(stores int, target int64) cache.GCSettings {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.mu.stores += stores
	b.mu.targets += target
	if b.mu.stores <= 0 {
		b.mu.stores, b.mu.targets = 0, 0
	}
	s := cache.GCSettingsFor(b.mu.targets, b.cgroupLimit)
	if s != b.mu.applied {
		b.apply(s)
		b.mu.applied = s
	}
	return s
}
