package objstoretest

import (
	"context"
	"maps"
	"slices"
	"testing"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
)

// omapChecks check the omap ops and reads.
func omapChecks() []check {
	kv := func(pairs ...string) map[string][]byte {
		m := map[string][]byte{}
		for i := 0; i+1 < len(pairs); i += 2 {
			m[pairs[i]] = []byte(pairs[i+1])
		}
		return m
	}
	keysAfter := func(t *testing.T, s objstore.Store, after string, stopAfter int) []string {
		t.Helper()
		var keys []string
		err := s.OmapIterate(context.Background(), "c", "o", after, func(k string, _ []byte) bool {
			keys = append(keys, k)
			return len(keys) < stopAfter
		})
		if err != nil {
			t.Fatalf("OmapIterate after %q: %v", after, err)
		}
		return keys
	}
	return []check{
		{"omap set, get and remove", func(t *testing.T, in Instance) {
			s := in.Store
			ctx := context.Background()
			commit(t, s, objstore.CreateCollection("c"), objstore.Touch("c", "o"),
				objstore.OmapSetKeys("c", "o", kv("k1", "v1", "k2", "v2", "k3", "")),
				objstore.OmapSetKeys("c", "o", kv("k1", "new")))
			got, err := s.OmapGet(ctx, "c", "o", []string{"k1", "k3", "missing"})
			if err != nil || len(got) != 2 || string(got["k1"]) != "new" || len(got["k3"]) != 0 {
				t.Fatalf("OmapGet = %q, %v; want k1=new and an empty k3", got, err)
			}
			if _, ok := got["k3"]; !ok {
				t.Fatal("OmapGet left out a key with an empty value")
			}
			commit(t, s, objstore.OmapRmKeys("c", "o", []string{"k2", "never-set"}))
			if d := dumpObject(t, s, "c", "o"); !maps.Equal(d.Omap, map[string]string{"k1": "new", "k3": ""}) {
				t.Fatalf("omap after removing k2 = %q", d.Omap)
			}
		}},
		{"omap header and clear", func(t *testing.T, in Instance) {
			s := in.Store
			ctx := context.Background()
			commit(t, s, objstore.CreateCollection("c"), objstore.Touch("c", "o"))
			if h, err := s.OmapGetHeader(ctx, "c", "o"); err != nil || len(h) != 0 {
				t.Fatalf("unset header = %q, %v; want empty", h, err)
			}
			commit(t, s, objstore.OmapSetHeader("c", "o", []byte("hdr")), objstore.OmapSetKeys("c", "o", kv("a", "1")),
				objstore.SetAttr("c", "o", "x", []byte("kept")))
			if h, err := s.OmapGetHeader(ctx, "c", "o"); err != nil || string(h) != "hdr" {
				t.Fatalf("header = %q, %v", h, err)
			}
			commit(t, s, objstore.OmapClear("c", "o"))
			d := dumpObject(t, s, "c", "o")
			if len(d.Omap) != 0 || d.Header != "" || d.Attrs["x"] != "kept" {
				t.Fatalf("after OmapClear: %s; want no omap, no header, the attribute kept", d)
			}
			commit(t, s, objstore.OmapSetKeys("c", "o", kv("b", "2")))
			if d := dumpObject(t, s, "c", "o"); !maps.Equal(d.Omap, map[string]string{"b": "2"}) {
				t.Fatalf("omap set after a clear = %q", d.Omap)
			}
		}},
		{"omap iterate", func(t *testing.T, in Instance) {
			s := in.Store
			commit(t, s, objstore.CreateCollection("c"), objstore.Touch("c", "o"),
				objstore.OmapSetKeys("c", "o", kv("k3", "3", "k1", "1", "k5", "5", "k2", "2", "k4", "4")))
			tests := []struct {
				after string
				stop  int
				want  []string
			}{
				{"", 100, []string{"k1", "k2", "k3", "k4", "k5"}},
				{"k2", 100, []string{"k3", "k4", "k5"}},
				{"k25", 100, []string{"k3", "k4", "k5"}},
				{"k5", 100, nil},
				{"", 2, []string{"k1", "k2"}},
			}
			for _, tt := range tests {
				if got := keysAfter(t, s, tt.after, tt.stop); !slices.Equal(got, tt.want) {
					t.Errorf("keys after %q stopping at %d = %q, want %q", tt.after, tt.stop, got, tt.want)
				}
			}
		}},
	}
}
