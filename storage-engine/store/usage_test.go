package store

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestCollectionUsageDoesNotBlockCommits holds a usage scan after its first object (a hook, not
// timing) and commits meanwhile a transaction that changes the collection and the reference
// counts both ways (a clone makes units shared, a removal makes shared units exclusive again).
// The commit must return while the scan is held, and the scan must report the state it started
// from; a scan after the commit reports the new state. Objects have different sizes so that
// the two changes of exclusivity cannot cancel out.
func TestCollectionUsageDoesNotBlockCommits(t *testing.T) {
	s := newStore(t, Options{PreferDeferredSize: -1}) // overwrites are copy-on-write: they free units
	unit := s.unit
	setup := NewTransaction().CreateCollection("a").CreateCollection("b")
	for i := range 4 {
		setup.Write("a", fmt.Sprintf("o%d", i), 0, pattern(int(uint64(i+1)*unit), byte(i)))
	}
	setup.CloneTo("a", "o3", "b", "o3")
	commit(t, s, setup)
	// a holds 1+2+3+4 units; o3's 4 are shared with b.
	before := CollectionUsage{Objects: 4, Referenced: 10 * unit, Exclusive: 6 * unit}
	checkUsage(t, s, "before", "a", before)

	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	s.hooks.usageObject = func() {
		once.Do(func() {
			close(held)
			<-release
		})
	}
	type result struct {
		u   CollectionUsage
		err error
	}
	scan := make(chan result, 1)
	go func() {
		u, err := s.CollectionUsage(ctx, "a")
		scan <- result{u, err}
	}()
	<-held
	committed := make(chan error, 1)
	go func() {
		committed <- s.Commit(ctx, NewTransaction().
			CloneTo("a", "o0", "b", "o0").                // o0's unit becomes shared
			Remove("b", "o3").                            // o3's units become exclusive
			Write("a", "o2", 0, pattern(int(unit), 9)).   // a copy-on-write overwrite frees a unit
			Write("a", "o4", 0, pattern(int(5*unit), 4))) // a new object of 5 units
	}()
	// A guard against a deadlock, not a measure of speed: the scan is held until the commit
	// returns, so a commit waiting for the scan never returns.
	select {
	case err := <-committed:
		if err != nil {
			t.Fatalf("Commit during a usage scan: %v", err)
		}
	case <-time.After(time.Minute):
		close(release)
		t.Fatalf("a commit issued during a usage scan did not return while the scan was held (it returned %v once the scan went on)", <-committed)
	}
	close(release)
	r := <-scan
	if r.err != nil {
		t.Fatalf("CollectionUsage held during a commit: %v", r.err)
	}
	if r.u != before {
		t.Fatalf("usage scanned across a commit = %+v, want the state it started from %+v", r.u, before)
	}
	s.hooks.usageObject = nil
	// a holds 1+2+3+4+5 units; o0's one is shared with b.
	checkUsage(t, s, "after", "a", CollectionUsage{Objects: 5, Referenced: 15 * unit, Exclusive: 14 * unit})
	checkUsage(t, s, "after", "b", CollectionUsage{Objects: 1, Referenced: unit, Exclusive: 0})
}

func checkUsage(t *testing.T, s *Store, what, c string, want CollectionUsage) {
	t.Helper()
	got, err := s.CollectionUsage(ctx, c)
	if err != nil {
		t.Fatalf("%s: CollectionUsage(%s): %v", what, c, err)
	}
	if got != want {
		t.Fatalf("%s: usage of %s = %+v, want %+v", what, c, got, want)
	}
}
