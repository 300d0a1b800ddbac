package replica

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"reflect"
	"slices"
	"testing"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
)

func TestDirtyCodecRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		s    dirtySnapshot
	}{
		{"empty", dirtySnapshot{regionSize: 4096, runs: map[string][]dirtyRun{}}},
		{"one region", dirtySnapshot{regionSize: 1 << 20, runs: map[string][]dirtyRun{"node-b": {{0, 1}}}}},
		{"runs and replicas", dirtySnapshot{regionSize: 4096, runs: map[string][]dirtyRun{
			"node-b": {{3, 2}, {7, 1}, {1000, 40}},
			"node-c": {{1 << 30, 5}},
		}}},
		{"last region of the address space", dirtySnapshot{regionSize: 4096, runs: map[string][]dirtyRun{"b": {{(1<<63-1)/4096 - 1, 1}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeDirty(encodeDirty(tt.s))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.s) {
				t.Fatalf("decode(encode(%+v)) = %+v", tt.s, got)
			}
		})
	}
}

// resum replaces the trailing checksum of b, so a test reaches the checks behind it.
func resum(b []byte) []byte {
	body := b[:len(b)-4]
	return binary.LittleEndian.AppendUint32(slices.Clone(body), crc32.Checksum(body, crc32c))
}

func TestDecodeDirtyRejectsCorruption(t *testing.T) {
	good := encodeDirty(dirtySnapshot{regionSize: 4096, runs: map[string][]dirtyRun{"b": {{1, 2}, {5, 1}}, "c": {{0, 1}}}})
	mutate := func(f func(b []byte) []byte) []byte { return f(slices.Clone(good)) }
	// body builds a log from its body (header included), with a valid checksum.
	body := func(parts ...[]byte) []byte {
		b := bytes.Join(parts, nil)
		return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crc32c))
	}
	hdr := append([]byte(dirtyMagic), dirtyFormatV1)
	hdr = binary.LittleEndian.AppendUint64(hdr, 4096)
	uv := func(vs ...uint64) []byte {
		var b []byte
		for _, v := range vs {
			b = binary.AppendUvarint(b, v)
		}
		return b
	}
	tests := []struct {
		name string
		in   []byte
	}{
		{"nil", nil},
		{"short", []byte("CDLG\x01")},
		{"flipped bit", mutate(func(b []byte) []byte { b[len(b)/2] ^= 4; return b })},
		{"truncated", good[:len(good)-1]},
		{"bad checksum", mutate(func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b })},
		{"bad magic", mutate(func(b []byte) []byte { b[0] = 'X'; return resum(b) })},
		{"unknown version", mutate(func(b []byte) []byte { b[4] = 2; return resum(b) })},
		{"region size not a power of two", mutate(func(b []byte) []byte { b[5] = 1; return resum(b) })},
		{"region size too small", body([]byte(dirtyMagic), []byte{dirtyFormatV1}, binary.LittleEndian.AppendUint64(nil, 2048), uv(0))},
		{"trailing bytes", body(hdr, uv(0), []byte{0})},
		{"missing replicas", body(hdr, uv(2), uv(1), []byte("b"), uv(1, 0, 1))},
		{"empty name", body(hdr, uv(1, 0, 1, 0, 1))},
		{"names out of order", body(hdr, uv(2), uv(1), []byte("c"), uv(1, 0, 1), uv(1), []byte("b"), uv(1, 0, 1))},
		{"duplicate name", body(hdr, uv(2), uv(1), []byte("b"), uv(1, 0, 1), uv(1), []byte("b"), uv(1, 5, 1))},
		{"replica without runs", body(hdr, uv(1, 1), []byte("b"), uv(0))},
		{"empty run", body(hdr, uv(1, 1), []byte("b"), uv(1, 0, 0))},
		{"adjacent runs", body(hdr, uv(1, 1), []byte("b"), uv(2, 0, 1, 0, 1))},
		{"run beyond the address space", body(hdr, uv(1, 1), []byte("b"), uv(1, 1<<62, 1))},
		{"too many regions", body(hdr, uv(1, 1), []byte("b"), uv(1, 0, maxDirtyRegions+1))},
		{"huge run count", body(hdr, uv(1, 1), []byte("b"), uv(1<<40))},
		{"overlong number", body(hdr, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})},
		{"name beyond the end", body(hdr, uv(1, 100), []byte("b"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := decodeDirty(tt.in); !errors.Is(err, objstore.ErrCorrupt) {
				t.Fatalf("decode = %+v, %v; want an error wrapping ErrCorrupt", s, err)
			}
		})
	}
	if _, err := decodeDirty(good); err != nil {
		t.Fatalf("the uncorrupted log: %v", err)
	}
}

// FuzzDecodeDirtyRegions: decoding arbitrary bytes never panics, and whatever decodes encodes to
// a log that decodes to the same content.
func FuzzDecodeDirtyRegions(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("CDLG\x01"))
	f.Add(encodeDirty(dirtySnapshot{regionSize: 4096, runs: map[string][]dirtyRun{}}))
	f.Add(encodeDirty(dirtySnapshot{regionSize: 1 << 20, runs: map[string][]dirtyRun{"node-b": {{0, 1}, {5, 3}}, "node-c": {{1 << 20, 7}}}}))
	f.Add(encodeDirty(dirtySnapshot{regionSize: 8192, runs: map[string][]dirtyRun{"x": {{(1<<63-1)/8192 - 2, 2}}}}))
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := decodeDirty(in)
		if err != nil {
			if !errors.Is(err, objstore.ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		again, err := decodeDirty(encodeDirty(s))
		if err != nil {
			t.Fatalf("re-encoded log does not decode: %v", err)
		}
		if !reflect.DeepEqual(again, s) {
			t.Fatalf("round trip changed %+v into %+v", s, again)
		}
	})
}

// TestOpenDirtyLog: a log reopened over the same store has the same regions, also with another
// region size (converted to the regions they touch); a corrupt one fails.
func TestOpenDirtyLog(t *testing.T) {
	ctx := context.Background()
	st := &MemDirtyStore{}
	l, err := OpenDirtyLog(ctx, 8192, st)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Mark(ctx, 8192, 100, "b"); err != nil {
		t.Fatal(err)
	}
	if err := l.Mark(ctx, 5*8192, 3*8192, "b", "c"); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		regionSize int64
		b, c       []Extent
	}{
		{8192, []Extent{{8192, 8192}, {5 * 8192, 3 * 8192}}, []Extent{{5 * 8192, 3 * 8192}}},
		{4096, []Extent{{8192, 8192}, {5 * 8192, 3 * 8192}}, []Extent{{5 * 8192, 3 * 8192}}},
		{65536, []Extent{{0, 65536}}, []Extent{{0, 65536}}},
	} {
		re, err := OpenDirtyLog(ctx, tt.regionSize, st)
		if err != nil {
			t.Fatal(err)
		}
		if got := re.Extents("b"); !slices.Equal(got, tt.b) {
			t.Errorf("region size %d: b = %v, want %v", tt.regionSize, got, tt.b)
		}
		if got := re.Extents("c"); !slices.Equal(got, tt.c) {
			t.Errorf("region size %d: c = %v, want %v", tt.regionSize, got, tt.c)
		}
	}
	bad := &MemDirtyStore{data: []byte("not a dirty log")}
	if _, err := OpenDirtyLog(ctx, 8192, bad); !errors.Is(err, objstore.ErrCorrupt) {
		t.Fatalf("open over a corrupt log = %v, want ErrCorrupt", err)
	}
}
