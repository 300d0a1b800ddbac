package replica

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
)

// flakyDirtyStore is a MemDirtyStore that counts saves and fails them while err is set.
type flakyDirtyStore struct {
	MemDirtyStore
	mu    sync.Mutex
	err   error
	saves int
}

func (s *flakyDirtyStore) Save(ctx context.Context, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.saves++
	if s.err != nil {
		return s.err
	}
	return s.MemDirtyStore.Save(ctx, data)
}

func (s *flakyDirtyStore) set(err error) (saves int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
	return s.saves
}

// TestDirtyMarkNotDurableFailsWrite: while the dirty log cannot be saved, a write that misses a
// replica fails, its replica is not dropped, and nothing is acknowledged; once saving works the
// write goes through, only a region's first mark saves, and a new coordinator over the same
// store has every mark, also those of the failed write.
func TestDirtyMarkNotDurableFailsWrite(t *testing.T) {
	ctx := context.Background()
	const size = 8 * 4096
	a, b := newFake("a", size, nil), newFake("b", size, nil)
	st := &flakyDirtyStore{}
	rec := &fakeRecorder{}
	cfg := Config{Generation: 1, Local: a, Remotes: []Replica{b}, Recorder: rec, RegionSize: 4096, DirtyStore: st}
	co, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := co.Write(ctx, 0, bytes.Repeat([]byte{1}, size)); err != nil {
		t.Fatal(err)
	}
	if n := st.set(nil); n != 0 {
		t.Fatalf("%d saves with every replica in sync", n)
	}
	b.writeHook = func(context.Context) error { return errDisk }
	st.set(errDisk)
	if err := co.Write(ctx, 4096, []byte{2}); !errors.Is(err, errDisk) {
		t.Fatalf("write whose dirty mark could not be saved = %v, want the store's error", err)
	}
	if rec.calls != 0 || !slices.Equal(co.InSync(), []string{"a", "b"}) {
		t.Fatalf("recorder called %d times, in sync %v: nobody may be dropped for a failed write", rec.calls, co.InSync())
	}
	st.set(nil)
	tests := []struct {
		name      string
		off       int64
		wantSaves int // saves the write makes
	}{
		{"the failed write's region again: not durable yet, saved", 4096, 1},
		{"a new region", 3 * 4096, 1},
		{"a region already durable", 3*4096 + 100, 0},
		{"the first region again", 4096 + 7, 0},
	}
	for _, tt := range tests {
		before := st.set(nil)
		if err := co.Write(ctx, tt.off, []byte{3}); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := st.set(nil) - before; got != tt.wantSaves {
			t.Errorf("%s: %d saves, want %d", tt.name, got, tt.wantSaves)
		}
	}
	if _, ok := rec.droppedNames()["b"]; !ok {
		t.Fatal("b was not dropped once the marks were durable")
	}
	want := []Extent{{4096, 4096}, {3 * 4096, 4096}}
	if got := co.Dirty().Extents("b"); !slices.Equal(got, want) {
		t.Fatalf("dirty regions of b = %v, want %v", got, want)
	}
	// A restarted coordinator (next generation, same store) has the same log.
	b.writeHook = nil
	cfg.Generation = 2
	re, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := re.Dirty().Extents("b"); !slices.Equal(got, want) {
		t.Fatalf("dirty regions of b after a restart = %v, want %v", got, want)
	}
}

// TestDirtyLoadFailureFailsOpen: a coordinator whose dirty log cannot be loaded does not open.
func TestDirtyLoadFailureFailsOpen(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name  string
		store DirtyStore
		want  error
	}{
		{"load error", failingLoad{errDisk}, errDisk},
		{"stale generation", failingLoad{&StaleError{Requested: 1, Recorded: 2}}, ErrFenced},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(ctx, Config{Generation: 1, Local: newFake("a", 4096, nil), Recorder: &fakeRecorder{}, DirtyStore: tt.store})
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open = %v, want %v", err, tt.want)
			}
		})
	}
}

type failingLoad struct{ err error }

func (f failingLoad) Load(context.Context) ([]byte, error) { return nil, f.err }
func (f failingLoad) Save(context.Context, []byte) error   { return f.err }

// TestDirtyStoreFailingWithItsReplica: when the dirty log cannot be saved and the replica whose
// volume keeps it failed the write (its store failed under both), the log moves to memory and the
// write is acknowledged on the other replica, the failed one dropped: one failing disk on the
// coordinator's node must not stop the volume. When the log's replica confirmed the write (its
// store works, the save failed anyway), or the coordinator does not know which replica keeps the
// log, the write fails as before and nothing is detached.
func TestDirtyStoreFailingWithItsReplica(t *testing.T) {
	ctx := context.Background()
	const size = 8 * 4096
	for _, tc := range []struct {
		name         string
		failing      string // the replica whose writes fail
		dirtyReplica string
		detached     bool
	}{
		{"the log's replica fails with its store", "a", "a", true},
		{"another replica fails, the log's store fails", "b", "a", false},
		{"the log's replica is not known", "a", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newFake("a", size, nil), newFake("b", size, nil)
			st := &flakyDirtyStore{}
			rec := &fakeRecorder{}
			var detachedFor []string
			cfg := Config{Generation: 1, Local: a, Remotes: []Replica{b}, Recorder: rec, RegionSize: 4096, DirtyStore: st,
				DirtyReplica: tc.dirtyReplica, OnDirtyDetached: func(r string, err error) {
					if !errors.Is(err, errDisk) {
						t.Errorf("detached with %v, want the store's error", err)
					}
					detachedFor = append(detachedFor, r)
				}}
			co, err := Open(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			failing := map[string]*fakeReplica{"a": a, "b": b}[tc.failing]
			failing.writeHook = func(context.Context) error { return errDisk }
			st.set(errDisk)
			err = co.Write(ctx, 4096, []byte{2})
			if !tc.detached {
				if !errors.Is(err, errDisk) {
					t.Fatalf("write = %v, want the store's error", err)
				}
				if len(detachedFor) != 0 || rec.calls != 0 {
					t.Fatalf("detached for %v, %d drops: nothing may change for a write that failed", detachedFor, rec.calls)
				}
				return
			}
			if err != nil {
				t.Fatalf("write with the log's replica and store failing: %v", err)
			}
			if !slices.Equal(detachedFor, []string{"a"}) {
				t.Fatalf("detached for %v, want [a]", detachedFor)
			}
			if _, ok := rec.droppedNames()["a"]; !ok || !slices.Equal(co.InSync(), []string{"b"}) {
				t.Fatalf("dropped %v, in sync %v: a must be dropped (recorded) and b stay", rec.droppedNames(), co.InSync())
			}
			saves := st.set(errDisk)
			for off := int64(0); off < size; off += 4096 {
				if err := co.Write(ctx, off, []byte{3}); err != nil {
					t.Fatalf("write at %d after the log moved to memory: %v", off, err)
				}
			}
			if got := st.set(errDisk); got != saves {
				t.Fatalf("%d more saves after the log moved to memory", got-saves)
			}
			if got, want := co.Dirty().Extents("a"), []Extent{{0, size}}; !slices.Equal(got, want) {
				t.Fatalf("dirty regions of a = %v, want %v", got, want)
			}
		})
	}
}
