package objstoretest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
)

// txnChecks check transactions as a whole: order, atomicity, capacity, cancellation, concurrency.
func txnChecks() []check {
	return []check{
		{"ops see earlier ops", func(t *testing.T, in Instance) {
			s := in.Store
			commit(t, s,
				objstore.CreateCollection("c"),
				objstore.Write("c", "a", 0, []byte("abcdef")),
				objstore.SetAttr("c", "a", "x", []byte("1")),
				objstore.Clone("c", "a", "b"),
				objstore.Zero("c", "b", 1, 2),
				objstore.Rename("c", "a", "r"),
				objstore.Truncate("c", "r", 3),
				objstore.Touch("c", "gone"),
				objstore.Remove("c", "gone"),
				objstore.CreateCollection("tmp"),
				objstore.RemoveCollection("tmp"),
			)
			want := storeDump{"c": {
				"b": {Size: 6, Data: "a\x00\x00def", Attrs: map[string]string{"x": "1"}, Omap: map[string]string{}},
				"r": {Size: 3, Data: "abc", Attrs: map[string]string{"x": "1"}, Omap: map[string]string{}},
			}}
			if d := want.diff(dump(t, s)); d != "" {
				t.Fatalf("state after one transaction differs from the expected:\n%s", d)
			}
		}},
		{"failed transaction changes nothing", func(t *testing.T, in Instance) {
			s := in.Store
			commit(t, s, objstore.CreateCollection("c"))
			commit(t, s, full("c", "o", "original")...)
			before := dump(t, s)
			used := statfs(t, s).Used
			err := s.Commit(context.Background(), []objstore.Op{
				objstore.CreateCollection("new"),
				objstore.Write("new", "n", 0, pattern(1<<20, 1)),
				objstore.Write("c", "o", 0, []byte("CHANGED")),
				objstore.Truncate("c", "o", 2),
				objstore.SetAttr("c", "o", "a", []byte("changed")),
				objstore.OmapClear("c", "o"),
				objstore.Clone("c", "o", "copy"),
				objstore.Rename("c", "o", "renamed"),
				objstore.Remove("c", "missing"),
			})
			if !errors.Is(err, objstore.ErrNotFound) {
				t.Fatalf("Commit = %v, want ErrNotFound from the last op", err)
			}
			unchanged(t, s, before, "a failed transaction")
			if fs := statfs(t, s); fs.Used != used {
				t.Errorf("Used %d after a failed transaction, was %d", fs.Used, used)
			}
			commit(t, s, objstore.CreateCollection("new")) // the failed create left nothing behind
		}},
		{"invalid op changes nothing", func(t *testing.T, in Instance) {
			s := in.Store
			commit(t, s, objstore.CreateCollection("c"))
			before := dump(t, s)
			err := s.Commit(context.Background(), []objstore.Op{
				objstore.Write("c", "o", 0, []byte("abc")),
				objstore.SetAttr("c", "o", "", []byte("no name")),
				objstore.Remove("c", "missing"), // would be ErrNotFound; the invalid op is reported first
			})
			if !errors.Is(err, objstore.ErrInvalid) {
				t.Fatalf("Commit = %v, want ErrInvalid", err)
			}
			unchanged(t, s, before, "a transaction with an invalid op")
		}},
		{"no space", func(t *testing.T, in Instance) {
			s := in.Store
			commit(t, s, objstore.CreateCollection("c"), objstore.Write("c", "keep", 0, []byte("kept")))
			before := dump(t, s)
			fs := statfs(t, s)
			if fs.Total <= 0 || fs.Available > fs.Total || fs.Available > 1<<30 {
				t.Fatalf("Statfs = %+v; the suite needs a store of at most 1 GiB", fs)
			}
			err := s.Commit(context.Background(), []objstore.Op{
				objstore.Touch("c", "small"),
				objstore.Write("c", "big", 0, pattern(int(fs.Available)+4<<20, 2)),
			})
			if !errors.Is(err, objstore.ErrNoSpace) {
				t.Fatalf("writing more than is available = %v, want ErrNoSpace", err)
			}
			unchanged(t, s, before, "a transaction that ran out of space")
			if after := statfs(t, s); after.Used != fs.Used {
				t.Errorf("Used %d after ErrNoSpace, was %d", after.Used, fs.Used)
			}
			half := pattern(int(fs.Available/2), 3)
			commit(t, s, objstore.Write("c", "half", 0, half)) // the store is still usable
			commit(t, s, objstore.Remove("c", "half"))
			if after := statfs(t, s); after.Used != fs.Used {
				t.Errorf("Used %d after writing and removing, was %d", after.Used, fs.Used)
			}
		}},
		{"canceled context", func(t *testing.T, in Instance) {
			s := in.Store
			commit(t, s, objstore.CreateCollection("c"), objstore.Write("c", "o", 0, []byte("abc")))
			before := dump(t, s)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if err := s.Commit(ctx, []objstore.Op{objstore.Write("c", "o", 0, []byte("X"))}); !errors.Is(err, context.Canceled) {
				t.Fatalf("Commit with a canceled context = %v, want context.Canceled", err)
			}
			if _, err := s.Read(ctx, "c", "o", 0, 3); !errors.Is(err, context.Canceled) {
				t.Fatalf("Read with a canceled context = %v, want context.Canceled", err)
			}
			unchanged(t, s, before, "a commit with a canceled context")
		}},
		{"concurrent commits and reads", func(t *testing.T, in Instance) {
			s := in.Store
			commit(t, s, objstore.CreateCollection("c"))
			const writers, rounds = 4, 20
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					ctx := context.Background()
					o := fmt.Sprintf("obj-%d", w)
					for r := range rounds {
						data := pattern(1000+r, byte(w))
						if err := s.Commit(ctx, []objstore.Op{objstore.Write("c", o, 0, data), objstore.SetAttr("c", o, "round", []byte{byte(r)})}); err != nil {
							t.Errorf("%s round %d: Commit: %v", o, r, err)
							return
						}
						got, err := s.Read(ctx, "c", o, 0, int64(len(data)))
						if err != nil || string(got) != string(data) {
							t.Errorf("%s round %d: read back %d bytes, %v", o, r, len(got), err)
							return
						}
						if _, _, err := s.ListObjects(ctx, "c", "", 100); err != nil {
							t.Errorf("%s round %d: ListObjects: %v", o, r, err)
							return
						}
					}
				})
			}
			wg.Wait()
			if objs := listAll(t, s, "c", 10); len(objs) != writers {
				t.Fatalf("objects after concurrent writers: %q", objs)
			}
		}},
	}
}
