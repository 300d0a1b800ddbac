package replica

import (
	"slices"
	"sync"
)

// regionLockSlots is the number of locks the regions of a volume hash onto.
const regionLockSlots = 64

// regionLocks serializes copies and comparisons of one region with the writes and trims that
// touch it. Regions hash onto a fixed set of slots: a write or trim holds the slots of its
// regions shared, and a copy the slots of its regions exclusively, each taken in ascending slot
// order; a comparison holds the slot of one region exclusively and takes nothing else; so no
// cycle can form.
type regionLocks struct {
	slots [regionLockSlots]sync.RWMutex
}

// lockShared takes the slots of every region [off, off+length) touches, shared, and returns the
// function that releases them.
func (l *regionLocks) lockShared(off, length, regionSize int64) func() {
	if length <= 0 || off < 0 {
		return func() {} // an empty or invalid range: the replicas refuse or ignore it
	}
	held := slotsOf(off, length, regionSize)
	for _, s := range held {
		l.slots[s].RLock()
	}
	return func() {
		for i := len(held) - 1; i >= 0; i-- {
			l.slots[held[i]].RUnlock()
		}
	}
}

// lockRange takes the slots of every region [off, off+length) touches, exclusively, and returns
// the function that releases them. REQUIRES: length > 0, off >= 0.
func (l *regionLocks) lockRange(off, length, regionSize int64) func() {
	held := slotsOf(off, length, regionSize)
	for _, s := range held {
		l.slots[s].Lock()
	}
	return func() {
		for i := len(held) - 1; i >= 0; i-- {
			l.slots[held[i]].Unlock()
		}
	}
}

// slotsOf returns the slots of the regions [off, off+length) touches, in ascending order.
func slotsOf(off, length, regionSize int64) []int {
	first, last := off/regionSize, (off+length-1)/regionSize
	var held []int
	if last-first+1 >= regionLockSlots {
		for s := range regionLockSlots {
			held = append(held, s)
		}
	} else {
		for r := first; r <= last; r++ {
			held = append(held, int(r%regionLockSlots))
		}
		slices.Sort(held)
		held = slices.Compact(held)
	}
	return held
}

// lock takes the slot of region exclusively and returns the function that releases it.
func (l *regionLocks) lock(region int64) func() {
	s := &l.slots[region%regionLockSlots]
	s.Lock()
	return s.Unlock
}

// lockExclusive takes the slots of regions exclusively, in ascending slot order, and returns the
// function that releases them. Holding several slots exclusively cannot deadlock with the
// writes (shared, ascending) nor with a copy or comparison (one slot, nothing else).
func (l *regionLocks) lockExclusive(regions []int64) func() {
	var held []int
	for _, r := range regions {
		held = append(held, int(r%regionLockSlots))
	}
	slices.Sort(held)
	held = slices.Compact(held)
	for _, s := range held {
		l.slots[s].Lock()
	}
	return func() {
		for i := len(held) - 1; i >= 0; i-- {
			l.slots[held[i]].Unlock()
		}
	}
}

// lockAll takes every slot exclusively and returns the function that releases them.
func (l *regionLocks) lockAll() func() {
	all := make([]int64, regionLockSlots)
	for i := range all {
		all[i] = int64(i)
	}
	return l.lockExclusive(all)
}
