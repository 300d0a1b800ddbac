package metafs

import (
	"errors"
	"testing"
)

// TestGrowerGivesSpaceToAFullFileSystem: a write that finds the file system full asks the grower
// set with SetGrower, which adds space, and goes on into it; without a grower, or when the grower
// fails, the write fails with ErrNoSpace (and the grower's error).
func TestGrowerGivesSpaceToAFullFileSystem(t *testing.T) {
	const unit = fullUnit
	e, region, files := newFullFS(t)
	big := pattern(1<<20, 9)
	f := create(t, e.fs, "/nogrower")
	if _, err := f.Write(big); err == nil {
		err = f.Sync()
		if !errors.Is(err, ErrNoSpace) {
			t.Fatalf("1 MiB into the full file system without a grower: %v, want ErrNoSpace", err)
		}
	} else if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("1 MiB into the full file system without a grower: %v, want ErrNoSpace", err)
	}
	_ = f.Close()

	errGrow := errors.New("no room in the owner")
	e.fs.SetGrower(func(int64) error { return errGrow })
	f = create(t, e.fs, "/failinggrower")
	_, err := f.Write(big)
	if err == nil {
		err = f.Sync()
	}
	if !errors.Is(err, ErrNoSpace) || !errors.Is(err, errGrow) {
		t.Fatalf("with a failing grower: %v, want ErrNoSpace and the grower's error", err)
	}
	_ = f.Close()

	next := region.End()
	var asked []int64
	e.fs.SetGrower(func(need int64) error {
		asked = append(asked, need)
		ext := Extent{Offset: next, Length: max(need, 2<<20)}
		next = ext.End()
		return e.fs.AddSpace(ext)
	})
	files["/grown"] = big
	writeFile(t, e.fs, "/grown", big)
	if len(asked) == 0 {
		t.Fatal("the grower was never asked")
	}
	for _, n := range asked {
		if n <= 0 || n%unit != 0 {
			t.Fatalf("the grower was asked for %d bytes, want whole units", n)
		}
	}
	e.fs.SetGrower(nil)
	e.remount()
	expectContent(t, e.fs, "/grown", big)
	if len(e.fs.Space()) != len(asked) {
		t.Fatalf("Space() = %v after %d growths", e.fs.Space(), len(asked))
	}
}
