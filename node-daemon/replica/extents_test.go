package replica

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
	"github.com/cobaltstore/cobalt/node-daemon/objstore/memstore"
	"github.com/cobaltstore/cobalt/node-daemon/volume"
)

// TestNodeExtentsAndChecksum checks the node side of rebuild and scrub on a thin volume: the
// written extents are the stripe objects that exist, up to their size (and the volume's end),
// merged where they touch; checksums are CRC-32C per block, zeros for unwritten ranges; and both
// obey the fence.
func TestNodeExtentsAndChecksum(t *testing.T) {
	ctx := context.Background()
	const stripe = 64 << 10
	m, err := volume.Open(ctx, memstore.New("s1", 1<<30))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(ctx, "v", 20*stripe+4096, stripe); err != nil {
		t.Fatal(err)
	}
	n := NewNode(oneStore{"s1", m})
	writes := []struct {
		off int64
		n   int
	}{
		{100, 10},                // stripe 0, size 110
		{3 * stripe, stripe},     // stripe 3, full
		{4 * stripe, 4096},       // stripe 4, touching stripe 3's end
		{20 * stripe, 4096},      // the last, short stripe
		{7*stripe + 8192, 16384}, // stripe 7 from 8 KiB
	}
	for _, w := range writes {
		if err := n.Write(ctx, Ref{StoreUUID: "s1", Volume: "v"}, 1, w.off, bytes.Repeat([]byte{0xab}, w.n)); err != nil {
			t.Fatal(err)
		}
	}
	ext, size, err := n.Extents(ctx, Ref{StoreUUID: "s1", Volume: "v"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := []Extent{{0, 110}, {3 * stripe, stripe + 4096}, {7 * stripe, 8192 + 16384}, {20 * stripe, 4096}}
	if !slices.Equal(ext, want) || size != 20*stripe+4096 {
		t.Fatalf("extents = %v, size %d; want %v, %d", ext, size, want, 20*stripe+4096)
	}

	sums, err := n.Checksum(ctx, Ref{StoreUUID: "s1", Volume: "v"}, 1, 7*stripe, 3*8192, 8192)
	if err != nil {
		t.Fatal(err)
	}
	tab := crc32.MakeTable(crc32.Castagnoli)
	wantSums := []uint32{
		crc32.Checksum(make([]byte, 8192), tab),
		crc32.Checksum(bytes.Repeat([]byte{0xab}, 8192), tab),
		crc32.Checksum(bytes.Repeat([]byte{0xab}, 8192), tab),
	}
	if !slices.Equal(sums, wantSums) {
		t.Fatalf("checksums = %x, want %x", sums, wantSums)
	}

	bad := []struct {
		name             string
		gen              uint64
		off, length, bsz int64
		want             error
	}{
		{"block size not a power of two", 1, 0, 8192, 5000, objstore.ErrInvalid},
		{"block size too small", 1, 0, 8192, 2048, objstore.ErrInvalid},
		{"range too long", 1, 0, MaxChecksumLength + 1, 1 << 20, objstore.ErrInvalid},
		{"range outside the volume", 1, 21 * stripe, 4096, 4096, objstore.ErrInvalid},
		{"generation 0", 0, 0, 4096, 4096, objstore.ErrInvalid},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := n.Checksum(ctx, Ref{StoreUUID: "s1", Volume: "v"}, tc.gen, tc.off, tc.length, tc.bsz); !errors.Is(err, tc.want) {
				t.Fatalf("Checksum = %v, want %v", err, tc.want)
			}
		})
	}
	if err := n.Flush(ctx, Ref{StoreUUID: "s1", Volume: "v"}, 2); err != nil { // a newer coordinator claims the replica
		t.Fatal(err)
	}
	if _, _, err := n.Extents(ctx, Ref{StoreUUID: "s1", Volume: "v"}, 1); !errors.Is(err, ErrStaleGeneration) {
		t.Fatalf("extents for an older generation = %v", err)
	}
	if _, err := n.Checksum(ctx, Ref{StoreUUID: "s1", Volume: "v"}, 1, 0, 4096, 4096); !errors.Is(err, ErrStaleGeneration) {
		t.Fatalf("checksum for an older generation = %v", err)
	}
}

func TestChunksAndMergeExtents(t *testing.T) {
	cases := []struct {
		name   string
		in     []Extent
		merged []Extent
		chunks []Extent // of merged, at 4096-byte regions
	}{
		{"empty", nil, nil, nil},
		{"overlapping and touching", []Extent{{8192, 100}, {0, 4096}, {4096, 10}, {8000, 300}},
			[]Extent{{0, 4106}, {8000, 300}},
			[]Extent{{0, 4096}, {4096, 10}, {8000, 192}, {8192, 108}}},
		{"zero length dropped", []Extent{{0, 0}, {100, 50}}, []Extent{{100, 50}}, []Extent{{100, 50}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := mergeExtents(tc.in)
			if !slices.Equal(got, tc.merged) {
				t.Fatalf("merge = %v, want %v", got, tc.merged)
			}
			if ch := chunks(got, 4096); !slices.Equal(ch, tc.chunks) {
				t.Fatalf("chunks = %v, want %v", ch, tc.chunks)
			}
		})
	}
}

func TestMismatchMajority(t *testing.T) {
	rot := func(names ...string) map[string]string {
		m := map[string]string{}
		for _, n := range names {
			m[n] = "corruption detected"
		}
		return m
	}
	cases := []struct {
		name       string
		sums       map[string]uint32
		unreadable map[string]string
		good       string
		bad        []string
		ok         bool
	}{
		{"two that differ", map[string]uint32{"a": 1, "b": 2}, nil, "", nil, false},
		{"three, one bad", map[string]uint32{"a": 1, "b": 2, "c": 1}, nil, "a", []string{"b"}, true},
		{"three, all differ", map[string]uint32{"a": 1, "b": 2, "c": 3}, nil, "", nil, false},
		{"three, first bad", map[string]uint32{"a": 9, "b": 2, "c": 2}, nil, "b", []string{"a"}, true},
		{"two, one unreadable", map[string]uint32{"b": 2}, rot("a"), "b", []string{"a"}, true},
		{"three, one unreadable, two agree", map[string]uint32{"a": 5, "c": 5}, rot("b"), "a", []string{"b"}, true},
		{"three, one unreadable, two differ", map[string]uint32{"a": 5, "c": 6}, rot("b"), "", nil, false},
		{"three, two unreadable", map[string]uint32{"c": 6}, rot("a", "b"), "c", []string{"a", "b"}, true},
		{"none readable", map[string]uint32{}, rot("a", "b"), "", nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			good, bad, ok := Mismatch{Checksums: tc.sums, Unreadable: tc.unreadable}.Majority()
			if good != tc.good || !slices.Equal(bad, tc.bad) || ok != tc.ok {
				t.Fatalf("Majority = %q, %v, %v; want %q, %v, %v", good, bad, ok, tc.good, tc.bad, tc.ok)
			}
		})
	}
}

func TestIsCorrupt(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"local engine corruption", fmt.Errorf("checksum on a: %w", fmt.Errorf("read: %w", objstore.ErrCorrupt)), true},
		{"remote DataLoss", fmt.Errorf("replica b: %w", status.Error(codes.DataLoss, "corruption detected")), true},
		{"remote unavailable", fmt.Errorf("replica b: %w", status.Error(codes.Unavailable, "closing")), false},
		{"timeout", context.DeadlineExceeded, false},
		{"not found", objstore.ErrNotFound, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := isCorrupt(tc.err); got != tc.want {
				t.Fatalf("isCorrupt(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
