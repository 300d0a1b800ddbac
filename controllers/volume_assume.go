package controllers

import (
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// assumedPlacements remembers the placements this reconciler made that its cache may not show
// yet (the same "assume" idea as kube-scheduler's). Without it, two Volumes reconciled back to
// back could both count the same free space, because the second reconcile lists Volumes from
// a cache that has not seen the first one's spec.storeName.
//
// An entry lives until the cache shows the Volume placed (forgetSeen) or the Volume is deleted.
type assumedPlacements struct {
	mu struct {
		sync.Mutex
		// byVolume maps a Volume's UID to the Stores its copies were placed on and its size in
		// bytes (which each of them reserves).
		byVolume map[types.UID]assumed
	}
}

type assumed struct {
	stores []string
	bytes  int64
}

func (a *assumedPlacements) assume(vol types.UID, bytes int64, stores ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.mu.byVolume == nil {
		a.mu.byVolume = map[types.UID]assumed{}
	}
	a.mu.byVolume[vol] = assumed{stores: stores, bytes: bytes}
}

func (a *assumedPlacements) forget(vol types.UID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.mu.byVolume, vol)
}

// addUnseen adds to loads the assumed placements that the cache did not show; seen holds the
// UIDs of Volumes the cache shows placed. Entries the cache shows are dropped: from now on the
// cache accounts for them.
func (a *assumedPlacements) addUnseen(loads []storeLoad, seen map[types.UID]bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for uid, p := range a.mu.byVolume {
		if seen[uid] {
			delete(a.mu.byVolume, uid)
			continue
		}
		for i := range loads {
			if slices.Contains(p.stores, loads[i].Store.Name) {
				loads[i].Reserved += p.bytes
				loads[i].Volumes++
			}
		}
	}
}
