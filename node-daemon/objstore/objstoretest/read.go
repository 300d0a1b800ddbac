package objstoretest

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
)

// readChecks check reads at and past the end, listing, Statfs and buffer ownership.
func readChecks() []check {
	return []check{
		{"reads past the end", func(t *testing.T, in Instance) {
			s := in.Store
			data := pattern(10000, 4)
			commit(t, s, objstore.CreateCollection("c"), objstore.Write("c", "o", 0, data), objstore.Touch("c", "empty"))
			tests := []struct {
				name        string
				obj         string
				off, length int64
				want        []byte
			}{
				{"inside", "o", 100, 50, data[100:150]},
				{"crossing the end", "o", 9990, 100, data[9990:]},
				{"from 0 past the end", "o", 0, 1 << 20, data},
				{"at the end", "o", 10000, 10, nil},
				{"past the end", "o", 20000, 10, nil},
				{"far past the end", "o", 1 << 50, 1 << 20, nil},
				{"length 0", "o", 10, 0, nil},
				{"empty object", "empty", 0, 10, nil},
			}
			for _, tt := range tests {
				got := read(t, s, "c", tt.obj, tt.off, tt.length)
				if !bytes.Equal(got, tt.want) {
					t.Errorf("%s: read [%d,+%d) = %d bytes, want %d", tt.name, tt.off, tt.length, len(got), len(tt.want))
				}
			}
		}},
		{"list objects", func(t *testing.T, in Instance) {
			s := in.Store
			ctx := context.Background()
			names := []string{"a", "b", "b0", "c", "d/e", "z"}
			ops := []objstore.Op{objstore.CreateCollection("c"), objstore.CreateCollection("other")}
			for _, n := range slices.Backward(names) {
				ops = append(ops, objstore.Touch("c", n))
			}
			commit(t, s, append(ops, objstore.Touch("other", "x"))...)
			for _, page := range []int{1, 2, 5, 6, 100} {
				if got := listAll(t, s, "c", page); !slices.Equal(got, names) {
					t.Errorf("pages of %d: %q, want %q", page, got, names)
				}
			}
			objs, next, err := s.ListObjects(ctx, "c", "b0", 2)
			if err != nil || !slices.Equal(objs, []string{"b0", "c"}) || next != "d/e" {
				t.Errorf("ListObjects from b0 = %q next %q, %v; want [b0 c] next d/e (start is inclusive)", objs, next, err)
			}
			objs, next, err = s.ListObjects(ctx, "c", "bb", 10)
			if err != nil || !slices.Equal(objs, []string{"c", "d/e", "z"}) || next != "" {
				t.Errorf("ListObjects from bb = %q next %q, %v", objs, next, err)
			}
		}},
		{"statfs", func(t *testing.T, in Instance) {
			s := in.Store
			fs := statfs(t, s)
			if fs.Total <= 0 || fs.Used < 0 || fs.Available < 0 || fs.Used+fs.Available > fs.Total {
				t.Fatalf("Statfs = %+v", fs)
			}
			commit(t, s, objstore.CreateCollection("c"), objstore.Write("c", "o", 0, pattern(1<<20, 6)))
			after := statfs(t, s)
			if after.Used < fs.Used+1<<20 || after.Available > fs.Available-1<<20 || after.Total != fs.Total {
				t.Fatalf("Statfs after writing 1 MiB = %+v, before %+v", after, fs)
			}
			commit(t, s, objstore.Remove("c", "o"))
			if back := statfs(t, s); back.Used != fs.Used {
				t.Fatalf("Used %d after removing the object, was %d", back.Used, fs.Used)
			}
		}},
		{"buffers are copies", func(t *testing.T, in Instance) {
			s := in.Store
			ctx := context.Background()
			data, attr, val, hdr := []byte("data"), []byte("attr"), []byte("val"), []byte("hdr")
			commit(t, s, objstore.CreateCollection("c"), objstore.Write("c", "o", 0, data), objstore.SetAttr("c", "o", "a", attr),
				objstore.OmapSetKeys("c", "o", map[string][]byte{"k": val}), objstore.OmapSetHeader("c", "o", hdr))
			for _, b := range [][]byte{data, attr, val, hdr} {
				clear(b) // the caller reuses its buffers
			}
			want := dumpObject(t, s, "c", "o")
			if want.Data != "data" || want.Attrs["a"] != "attr" || want.Omap["k"] != "val" || want.Header != "hdr" {
				t.Fatalf("the store kept the caller's buffers: %s", want)
			}
			got, _ := s.Read(ctx, "c", "o", 0, 4)
			v, _ := s.GetAttr(ctx, "c", "o", "a")
			attrs, _ := s.GetAttrs(ctx, "c", "o")
			omap, _ := s.OmapGet(ctx, "c", "o", []string{"k"})
			h, _ := s.OmapGetHeader(ctx, "c", "o")
			for _, b := range [][]byte{got, v, attrs["a"], omap["k"], h} {
				clear(b)
			}
			_ = s.OmapIterate(ctx, "c", "o", "", func(_ string, v []byte) bool { clear(v); return true })
			if d := dumpObject(t, s, "c", "o"); !equalObjects(d, want) {
				t.Fatalf("changing returned buffers changed the store: %s", d)
			}
		}},
	}
}
