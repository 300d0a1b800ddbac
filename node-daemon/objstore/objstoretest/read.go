package objstoretest

import (
	"bytes"
	"context"
	"errors"
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
		{"read into a buffer", checkReadInto},
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

// checkReadInto checks the buffer-filling reads (objstore.ReaderInto and NoCacheReaderInto: the
// implementation's own when it has them): the bytes Read returns, holes as zeros, short at the
// end with the rest of the buffer untouched, into 4 KiB-aligned buffers and unaligned ones, the
// errors of a missing object or collection and of a negative offset, and no reference kept to the
// buffer.
func checkReadInto(t *testing.T, in Instance) {
	s := in.Store
	ctx := context.Background()
	const size = 30000
	data := pattern(10000, 8)
	tail := pattern(size-20000, 9)
	commit(t, s, objstore.CreateCollection("c"), objstore.Write("c", "o", 0, data), objstore.Write("c", "o", 20000, tail))
	want := make([]byte, size)
	copy(want, data)
	copy(want[20000:], tail)
	const garbage = 0xee
	for _, fn := range []struct {
		name string
		read objstore.ReadIntoFunc
	}{{"ReaderInto", objstore.ReaderInto(s)}, {"NoCacheReaderInto", objstore.NoCacheReaderInto(s)}} {
		for _, tt := range []struct {
			name    string
			off     int64
			n, want int
		}{
			{"inside", 100, 50, 50},
			{"aligned blocks", 4096, 4096, 4096},
			{"a hole", 12000, 4000, 4000},
			{"across the hole", 8192, 16384, 16384},
			{"crossing the end", size - 10, 100, 10},
			{"from 0 past the end", 0, 1 << 16, size},
			{"at the end", size, 10, 0},
			{"far past the end", 1 << 50, 4096, 0},
			{"empty buffer", 10, 0, 0},
		} {
			for _, aligned := range []bool{true, false} {
				// A 4 KiB-aligned buffer (a Go allocation of a multiple of 4 KiB) or one byte into it.
				raw := make([]byte, (tt.n+1+4095)/4096*4096)
				p := raw[:tt.n]
				if !aligned {
					p = raw[1 : tt.n+1]
				}
				for i := range p {
					p[i] = garbage
				}
				n, err := fn.read(ctx, "c", "o", tt.off, p)
				if err != nil || n != tt.want {
					t.Fatalf("%s %s (aligned %v): [%d,+%d) = %d bytes, %v; want %d", fn.name, tt.name, aligned, tt.off, tt.n, n, err, tt.want)
				}
				w := want[min(tt.off, size):][:n]
				if !bytes.Equal(p[:n], w) {
					t.Fatalf("%s %s (aligned %v): [%d,+%d) differs from what was written (holes read as zeros)", fn.name, tt.name, aligned, tt.off, tt.n)
				}
				if !allBytes(p[n:], garbage) {
					t.Fatalf("%s %s (aligned %v): [%d,+%d) changed the buffer past the %d bytes it returned", fn.name, tt.name, aligned, tt.off, tt.n, n)
				}
				clear(p) // the caller reuses its buffer: the store must not have kept it
				if got := read(t, s, "c", "o", tt.off, int64(tt.n)); tt.n > 0 && !bytes.Equal(got, w) {
					t.Fatalf("%s %s: Read after the buffer was reused = %d bytes, differs", fn.name, tt.name, len(got))
				}
			}
		}
		p := make([]byte, 4096)
		if _, err := fn.read(ctx, "c", "missing", 0, p); !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("%s of a missing object: %v, want ErrNotFound", fn.name, err)
		}
		if _, err := fn.read(ctx, "nocoll", "o", 0, p); !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("%s in a missing collection: %v, want ErrNotFound", fn.name, err)
		}
		if _, err := fn.read(ctx, "c", "o", -1, p); !errors.Is(err, objstore.ErrInvalid) {
			t.Errorf("%s at a negative offset: %v, want ErrInvalid", fn.name, err)
		}
	}
}

// allBytes reports whether every byte of b is v.
func allBytes(b []byte, v byte) bool {
	for _, c := range b {
		if c != v {
			return false
		}
	}
	return true
}
