package replica

import (
	"context"
	"errors"
	"slices"
	"testing"
)

func TestDirtyLog(t *testing.T) {
	type mark struct {
		off, length int64
		replicas    []string
	}
	tests := []struct {
		name      string
		marks     []mark
		replica   string
		want      []Extent
		wantBytes int64
	}{
		{"nothing marked", nil, "b", nil, 0},
		{"inside one region", []mark{{5000, 10, []string{"b"}}}, "b", []Extent{{4096, 4096}}, 4096},
		{"across a boundary", []mark{{4000, 200, []string{"b"}}}, "b", []Extent{{0, 8192}}, 8192},
		{"adjacent marks merge", []mark{{0, 4096, []string{"b"}}, {4096, 4096, []string{"b"}}}, "b", []Extent{{0, 8192}}, 8192},
		{"gaps stay apart, sorted", []mark{{40960, 1, []string{"b"}}, {0, 1, []string{"b"}}}, "b", []Extent{{0, 4096}, {40960, 4096}}, 8192},
		{"repeated marks count once", []mark{{0, 100, []string{"b"}}, {50, 100, []string{"b"}}}, "b", []Extent{{0, 4096}}, 4096},
		{"other replicas apart", []mark{{0, 1, []string{"c"}}, {8192, 1, []string{"b", "c"}}}, "b", []Extent{{8192, 4096}}, 4096},
		{"empty and negative ranges mark nothing", []mark{{0, 0, []string{"b"}}, {-5, 10, []string{"b"}}}, "b", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := NewDirtyLog(4096)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range tt.marks {
				if err := l.Mark(context.Background(), m.off, m.length, m.replicas...); err != nil {
					t.Fatal(err)
				}
			}
			if got := l.Extents(tt.replica); !slices.Equal(got, tt.want) {
				t.Fatalf("Extents = %v, want %v", got, tt.want)
			}
			if got := l.Bytes(tt.replica); got != tt.wantBytes {
				t.Fatalf("Bytes = %d, want %d", got, tt.wantBytes)
			}
			l.Clear(tt.replica)
			if got := l.Extents(tt.replica); len(got) != 0 {
				t.Fatalf("Extents after Clear = %v", got)
			}
		})
	}
	for _, size := range []int64{-1, 1000, 2048, 4097} {
		if _, err := NewDirtyLog(size); err == nil {
			t.Errorf("NewDirtyLog(%d) accepted", size)
		}
	}
	if l, err := NewDirtyLog(0); err != nil || l.RegionSize() != DefaultRegionSize {
		t.Errorf("NewDirtyLog(0) = %v, %v", l, err)
	}
}

// goneStore is a DirtyStore whose volume is gone: every save fails.
type goneStore struct{ MemDirtyStore }

func (*goneStore) Save(context.Context, []byte) error { return errors.New("volume not found") }

// TestDirtyLogDetach: a log whose store is gone fails the marks that must save (the write that
// needs them fails); once detached it keeps every mark in memory, the failed one included, and
// marks no longer wait for a save.
func TestDirtyLogDetach(t *testing.T) {
	ctx := context.Background()
	l, err := OpenDirtyLog(ctx, 0, &goneStore{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Mark(ctx, 0, 4096, "b"); err == nil {
		t.Fatal("a mark that could not be saved succeeded")
	}
	l.Detach()
	if err := l.Mark(ctx, 3*DefaultRegionSize, 4096, "b", "c"); err != nil {
		t.Fatalf("mark after Detach: %v", err)
	}
	if err := l.Mark(ctx, 0, 4096, "b"); err != nil {
		t.Fatalf("mark of an already marked region after Detach: %v", err)
	}
	want := []Extent{{0, DefaultRegionSize}, {3 * DefaultRegionSize, DefaultRegionSize}}
	if got := l.Extents("b"); !slices.Equal(got, want) {
		t.Fatalf("dirty extents of b = %v, want %v", got, want)
	}
	if got := l.Bytes("c"); got != DefaultRegionSize {
		t.Fatalf("dirty bytes of c = %d, want %d", got, DefaultRegionSize)
	}
}
