package cache

import "fmt"

// policy is a shard's replacement policy. All methods REQUIRE the shard's mutex.
// A policy owns the lists; the shard owns the index of resident entries and the totals.
type policy[K comparable, V any] interface {
	// insert places a newly resident entry on a list.
	insert(e *entry[K, V])
	// hit records a reference to a resident entry.
	hit(e *entry[K, V])
	// remove takes a resident entry off its list without leaving a ghost.
	remove(e *entry[K, V])
	// victim detaches and returns the entry to evict to make room under capacity, or nil when
	// every resident entry is held. It may leave a ghost of the victim's key.
	victim(capacity int64) *entry[K, V]
	// forgetGhost drops key's ghost, if any (before a resident entry takes that key).
	forgetGhost(key K)
	// setCapacity tells the policy the shard's new capacity (2Q trims A1out to it).
	setCapacity(capacity int64)
	// list returns the list with the given id (the shard adjusts held counts and charges).
	list(id listID) *entryList[K, V]
	// lists returns the policy's lists, resident ones first.
	lists() []*entryList[K, V]
	// check verifies the policy's internal invariants.
	check() error
}

func newPolicy[K comparable, V any](o Options, capacity int64) policy[K, V] {
	if o.Policy == PolicyLRU {
		return newLRU[K, V]()
	}
	return newTwoQ[K, V](o.KinRatio, o.KoutRatio, capacity)
}

// checkListMembership is shared by the policies' check methods.
func checkLists[K comparable, V any](ls ...*entryList[K, V]) error {
	for _, l := range ls {
		if err := l.check(); err != nil {
			return fmt.Errorf("cache: %w", err)
		}
	}
	return nil
}
