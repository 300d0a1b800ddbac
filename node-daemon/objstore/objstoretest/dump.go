package objstoretest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
)

// maxDumpData is how much of an object's data a dump holds; the suite's dumped objects are smaller.
const maxDumpData = 1 << 20

// objectDump is everything the contract lets a reader see of one object.
type objectDump struct {
	Size   int64
	Data   string
	Attrs  map[string]string
	Omap   map[string]string
	Header string
}

// storeDump is the visible state of a store: collection -> object -> contents.
type storeDump map[string]map[string]objectDump

// dump reads the whole store through its read methods.
func dump(t *testing.T, s objstore.Store) storeDump {
	t.Helper()
	ctx := context.Background()
	colls, err := s.ListCollections(ctx)
	if err != nil {
		t.Fatalf("ListCollections: %v", err)
	}
	if !slices.IsSorted(colls) {
		t.Errorf("ListCollections = %q, not sorted", colls)
	}
	out := storeDump{}
	for _, c := range colls {
		out[c] = map[string]objectDump{}
		for _, o := range listAll(t, s, c, 3) {
			out[c][o] = dumpObject(t, s, c, o)
		}
	}
	return out
}

func dumpObject(t *testing.T, s objstore.Store, c, o string) objectDump {
	t.Helper()
	ctx := context.Background()
	d := objectDump{Size: size(t, s, c, o), Omap: map[string]string{}}
	d.Data = string(read(t, s, c, o, 0, min(d.Size, maxDumpData)))
	attrs, err := s.GetAttrs(ctx, c, o)
	if err != nil {
		t.Fatalf("GetAttrs %s/%s: %v", c, o, err)
	}
	d.Attrs = stringValues(attrs)
	var keys []string
	err = s.OmapIterate(ctx, c, o, "", func(k string, v []byte) bool {
		keys = append(keys, k)
		d.Omap[k] = string(v)
		return true
	})
	if err != nil {
		t.Fatalf("OmapIterate %s/%s: %v", c, o, err)
	}
	if !slices.IsSorted(keys) {
		t.Errorf("OmapIterate %s/%s: keys %q not in order", c, o, keys)
	}
	h, err := s.OmapGetHeader(ctx, c, o)
	if err != nil {
		t.Fatalf("OmapGetHeader %s/%s: %v", c, o, err)
	}
	d.Header = string(h)
	return d
}

// listAll lists every object of c, page pages at a time, checking order and paging.
func listAll(t *testing.T, s objstore.Store, c string, page int) []string {
	t.Helper()
	var all []string
	start := ""
	for {
		objs, next, err := s.ListObjects(context.Background(), c, start, page)
		if err != nil {
			t.Fatalf("ListObjects %q from %q: %v", c, start, err)
		}
		if len(objs) > page {
			t.Fatalf("ListObjects %q: %d names, limit %d", c, len(objs), page)
		}
		all = append(all, objs...)
		if next == "" {
			break
		}
		if len(objs) != page || next <= objs[len(objs)-1] {
			t.Fatalf("ListObjects %q: page %q, next %q", c, objs, next)
		}
		start = next
	}
	if !slices.IsSorted(all) || len(slices.Compact(slices.Clone(all))) != len(all) {
		t.Fatalf("ListObjects %q: %q not sorted and unique", c, all)
	}
	return all
}

func stringValues(m map[string][]byte) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

// diff describes how two dumps differ ("" if they are equal).
func (d storeDump) diff(other storeDump) string {
	var b strings.Builder
	for _, c := range slices.Sorted(maps.Keys(d)) {
		oc, ok := other[c]
		if !ok {
			fmt.Fprintf(&b, "collection %q: gone\n", c)
			continue
		}
		for _, o := range slices.Sorted(maps.Keys(d[c])) {
			od, ok := oc[o]
			switch {
			case !ok:
				fmt.Fprintf(&b, "object %s/%s: gone\n", c, o)
			case !equalObjects(d[c][o], od):
				fmt.Fprintf(&b, "object %s/%s: %s, now %s\n", c, o, d[c][o], od)
			}
		}
		for o := range oc {
			if _, ok := d[c][o]; !ok {
				fmt.Fprintf(&b, "object %s/%s: appeared\n", c, o)
			}
		}
	}
	for c := range other {
		if _, ok := d[c]; !ok {
			fmt.Fprintf(&b, "collection %q: appeared\n", c)
		}
	}
	return b.String()
}

func equalObjects(a, b objectDump) bool {
	return a.Size == b.Size && a.Data == b.Data && a.Header == b.Header &&
		maps.Equal(a.Attrs, b.Attrs) && maps.Equal(a.Omap, b.Omap)
}

func (d objectDump) String() string {
	data := d.Data
	if len(data) > 32 {
		data = data[:32] + "..."
	}
	return fmt.Sprintf("{size %d data %q attrs %q omap %q header %q}", d.Size, data, d.Attrs, d.Omap, d.Header)
}

// unchanged fails the test if s no longer matches the dump before.
func unchanged(t *testing.T, s objstore.Store, before storeDump, after string) {
	t.Helper()
	if d := before.diff(dump(t, s)); d != "" {
		t.Errorf("store changed by %s:\n%s", after, d)
	}
}
