package objstoretest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
)

// effectChecks check the effect of the collection, data and attribute ops.
func effectChecks() []check {
	return []check{
		{"collections", func(t *testing.T, in Instance) {
			s := in.Store
			commit(t, s, objstore.CreateCollection("b"), objstore.CreateCollection("a"), objstore.CreateCollection("c"))
			commit(t, s, objstore.RemoveCollection("c"))
			got, err := s.ListCollections(context.Background())
			if err != nil || !slices.Equal(got, []string{"a", "b"}) {
				t.Fatalf("ListCollections = %q, %v; want [a b]", got, err)
			}
			if objs := listAll(t, s, "a", 10); len(objs) != 0 {
				t.Fatalf("new collection lists %q", objs)
			}
			commit(t, s, objstore.CreateCollection("c")) // a removed name can be used again
		}},
		{"touch", func(t *testing.T, in Instance) {
			s := in.Store
			commit(t, s, objstore.CreateCollection("c"), objstore.Touch("c", "o"))
			if n := size(t, s, "c", "o"); n != 0 {
				t.Fatalf("touched object has size %d", n)
			}
			commit(t, s, objstore.Write("c", "o", 0, []byte("abc")), objstore.Touch("c", "o"))
			if got := read(t, s, "c", "o", 0, 10); string(got) != "abc" {
				t.Fatalf("touch of an existing object changed its data to %q", got)
			}
		}},
		{"write", func(t *testing.T, in Instance) {
			s := in.Store
			commit(t, s, objstore.CreateCollection("c"), objstore.Write("c", "o", 0, []byte("hello world")))
			commit(t, s, objstore.Write("c", "o", 6, []byte("WORLD!")))
			if got := read(t, s, "c", "o", 0, 100); string(got) != "hello WORLD!" {
				t.Fatalf("after overwrite and extension: %q", got)
			}
			big := pattern(3<<20+123, 5) // several allocation units, unaligned end
			commit(t, s, objstore.Write("c", "big", 4095, big))
			if n := size(t, s, "c", "big"); n != 4095+int64(len(big)) {
				t.Fatalf("size = %d, want %d", n, 4095+len(big))
			}
			if got := read(t, s, "c", "big", 4095, int64(len(big))); !bytes.Equal(got, big) {
				t.Fatal("large unaligned write reads back different")
			}
			if got := read(t, s, "c", "big", 0, 4095); !bytes.Equal(got, make([]byte, 4095)) {
				t.Fatal("the range before the first write does not read as zeros")
			}
		}},
		{"owned write", func(t *testing.T, in Instance) {
			// Data handed over reads back as Write's does, and the store never writes to it, also
			// when a later write (handed over too) changes part of the same blocks.
			s := in.Store
			big, small, odd := pattern(1<<20, 3), pattern(4096, 4), pattern(1000, 6)
			was := [][]byte{bytes.Clone(big), bytes.Clone(small), bytes.Clone(odd)}
			commit(t, s, objstore.CreateCollection("c"), objstore.WriteOwned("c", "o", 0, big))
			commit(t, s, objstore.WriteOwned("c", "o", 8192, small), objstore.WriteOwned("c", "o", 10000, odd))
			want := bytes.Clone(was[0])
			copy(want[8192:], was[1])
			copy(want[10000:], was[2])
			if got := read(t, s, "c", "o", 0, 1<<20); !bytes.Equal(got, want) {
				t.Fatal("owned writes read back different")
			}
			for i, b := range [][]byte{big, small, odd} {
				if !bytes.Equal(b, was[i]) {
					t.Fatalf("the store wrote to the data of owned write %d", i)
				}
			}
		}},
		{"empty write", func(t *testing.T, in Instance) {
			s := in.Store
			commit(t, s, objstore.CreateCollection("c"), objstore.Write("c", "new", 100, nil))
			if n := size(t, s, "c", "new"); n != 0 {
				t.Fatalf("empty write at 100 made size %d, want 0 (it only creates the object)", n)
			}
			commit(t, s, objstore.Write("c", "o", 0, []byte("abc")), objstore.Write("c", "o", 1000, []byte{}))
			if n := size(t, s, "c", "o"); n != 3 {
				t.Fatalf("empty write past the end changed the size to %d, want 3", n)
			}
		}},
		{"sparse write", func(t *testing.T, in Instance) {
			s := in.Store
			commit(t, s, objstore.CreateCollection("c"))
			used := statfs(t, s).Used
			const far = 1 << 40
			commit(t, s, objstore.Write("c", "o", far, []byte("x")))
			if n := size(t, s, "c", "o"); n != far+1 {
				t.Fatalf("size = %d, want %d", n, far+1)
			}
			if got := read(t, s, "c", "o", far-2, 10); !bytes.Equal(got, []byte{0, 0, 'x'}) {
				t.Fatalf("read around the byte at 1 TiB = %q", got)
			}
			if got := read(t, s, "c", "o", 1<<30, 4096); !bytes.Equal(got, make([]byte, 4096)) {
				t.Fatal("a hole does not read as zeros")
			}
			if grew := statfs(t, s).Used - used; grew > 1<<20 {
				t.Fatalf("one byte at 1 TiB used %d bytes; holes must take no space", grew)
			}
		}},
		{"zero", func(t *testing.T, in Instance) {
			s := in.Store
			data := pattern(64<<10, 9)
			commit(t, s, objstore.CreateCollection("c"), objstore.Write("c", "o", 0, data))
			used := statfs(t, s).Used
			commit(t, s, objstore.Zero("c", "o", 100, 40000)) // unaligned, spans whole units
			want := slices.Clone(data)
			clear(want[100:40100])
			if got := read(t, s, "c", "o", 0, 1<<20); !bytes.Equal(got, want) {
				t.Fatal("data after zero differs")
			}
			if fs := statfs(t, s); fs.Used > used {
				t.Fatalf("zero grew Used from %d to %d", used, fs.Used)
			}
			commit(t, s, objstore.Zero("c", "o", 60<<10, 8<<10), objstore.Zero("c", "new", 10, 5))
			if n := size(t, s, "c", "o"); n != 68<<10 {
				t.Fatalf("zero past the end: size %d, want %d", n, 68<<10)
			}
			if n := size(t, s, "c", "new"); n != 15 {
				t.Fatalf("zero of a new object: size %d, want 15", n)
			}
			if got := read(t, s, "c", "new", 0, 100); !bytes.Equal(got, make([]byte, 15)) {
				t.Fatalf("zeroed new object reads %q", got)
			}
		}},
		{"zero of length 0", func(t *testing.T, in Instance) {
			s := in.Store
			commit(t, s, objstore.CreateCollection("c"), objstore.Write("c", "o", 0, []byte("abc")),
				objstore.Zero("c", "o", 50, 0), objstore.Zero("c", "new", 50, 0))
			if n := size(t, s, "c", "o"); n != 3 {
				t.Fatalf("zero of length 0 past the end: size %d, want 3", n)
			}
			if n := size(t, s, "c", "new"); n != 0 {
				t.Fatalf("zero of length 0 of a new object: size %d, want 0", n)
			}
		}},
		{"truncate", func(t *testing.T, in Instance) {
			s := in.Store
			data := pattern(20000, 3)
			commit(t, s, objstore.CreateCollection("c"), objstore.Write("c", "o", 0, data))
			commit(t, s, objstore.Truncate("c", "o", 5000))
			if got := read(t, s, "c", "o", 0, 1<<20); !bytes.Equal(got, data[:5000]) {
				t.Fatalf("after shrinking: %d bytes, want the first 5000", len(got))
			}
			commit(t, s, objstore.Truncate("c", "o", 30000))
			want := append(slices.Clone(data[:5000]), make([]byte, 25000)...)
			if got := read(t, s, "c", "o", 0, 1<<20); !bytes.Equal(got, want) {
				t.Fatal("after growing again, the cut bytes do not read as zeros")
			}
			used := statfs(t, s).Used
			commit(t, s, objstore.Truncate("c", "o", 1<<40))
			if n := size(t, s, "c", "o"); n != 1<<40 {
				t.Fatalf("size = %d after truncate to 1 TiB", n)
			}
			if grew := statfs(t, s).Used - used; grew > 1<<20 {
				t.Fatalf("truncate to 1 TiB used %d bytes", grew)
			}
			commit(t, s, objstore.Truncate("c", "o", 0))
			if got := read(t, s, "c", "o", 0, 10); len(got) != 0 {
				t.Fatalf("truncated to 0 reads %q", got)
			}
		}},
		{"remove", func(t *testing.T, in Instance) {
			s := in.Store
			commit(t, s, objstore.CreateCollection("c"), objstore.Write("c", "o", 0, []byte("abc")),
				objstore.SetAttr("c", "o", "a", []byte("1")), objstore.OmapSetKeys("c", "o", map[string][]byte{"k": []byte("v")}),
				objstore.OmapSetHeader("c", "o", []byte("h")))
			commit(t, s, objstore.Remove("c", "o"))
			if _, err := s.Stat(context.Background(), "c", "o"); !errors.Is(err, objstore.ErrNotFound) {
				t.Fatalf("Stat of removed object = %v, want ErrNotFound", err)
			}
			commit(t, s, objstore.Touch("c", "o"))
			if d := dumpObject(t, s, "c", "o"); !equalObjects(d, objectDump{Attrs: map[string]string{}, Omap: map[string]string{}}) {
				t.Fatalf("object made again under a removed name kept %s", d)
			}
			commit(t, s, objstore.Remove("c", "o"), objstore.RemoveCollection("c"))
		}},
		{"attributes", func(t *testing.T, in Instance) {
			s := in.Store
			ctx := context.Background()
			commit(t, s, objstore.CreateCollection("c"), objstore.Touch("c", "o"),
				objstore.SetAttr("c", "o", "a", []byte("1")), objstore.SetAttr("c", "o", "b", []byte("2")),
				objstore.SetAttr("c", "o", "e", nil), objstore.SetAttr("c", "o", "a", []byte("one")))
			if v, err := s.GetAttr(ctx, "c", "o", "a"); err != nil || string(v) != "one" {
				t.Fatalf("GetAttr a = %q, %v; want the last value set", v, err)
			}
			if v, err := s.GetAttr(ctx, "c", "o", "e"); err != nil || len(v) != 0 {
				t.Fatalf("GetAttr of an empty value = %q, %v", v, err)
			}
			commit(t, s, objstore.RmAttr("c", "o", "b"), objstore.RmAttr("c", "o", "never-set"))
			attrs, err := s.GetAttrs(ctx, "c", "o")
			if err != nil || len(attrs) != 2 || string(attrs["a"]) != "one" {
				t.Fatalf("GetAttrs = %q, %v; want a and e", attrs, err)
			}
			if _, err := s.GetAttr(ctx, "c", "o", "b"); !errors.Is(err, objstore.ErrNotFound) {
				t.Fatalf("GetAttr of a removed attribute = %v, want ErrNotFound", err)
			}
		}},
	}
}
