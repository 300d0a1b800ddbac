package memstore

import (
	"context"
	"errors"
	"testing"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
	"github.com/cobaltstore/cobalt/node-daemon/objstore/objstoretest"
)

// TestConformance runs the objstore conformance suite. It covers the bugs the earlier memstore
// had: the overflow panic of off+length ("errors/zero whose end overflows", "errors/write whose
// end overflows"), empty writes and zeros that grew the object ("empty write", "zero of length
// 0"), rename onto itself refused with ErrExists ("rename onto itself"), invalid names accepted
// ("errors/...name..."), and capacity not enforced until the end of a commit and sizes counted
// as space ("no space", "sparse write", "truncate").
func TestConformance(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstoretest.Instance {
		return objstoretest.Instance{Store: New("memstore-test", 64<<20)}
	})
}

// TestCapacity checks the memstore-specific capacity rules: space is counted in 4 KiB chunks,
// checked by every op that allocates (so one transaction cannot hold more than it was given), and
// a store made with capacity 0 is effectively unlimited without costing memory for holes.
func TestCapacity(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		capacity int64
		ops      []objstore.Op
		want     error
		used     int64
	}{
		{"one byte takes a chunk", 1 << 20, []objstore.Op{objstore.Write("c", "o", 0, []byte{1})}, nil, chunkSize},
		{"a byte on each side of a chunk boundary", 1 << 20, []objstore.Op{objstore.Write("c", "o", chunkSize-1, []byte{1, 2})}, nil, 2 * chunkSize},
		{"exactly the capacity", 2 * chunkSize, []objstore.Op{objstore.Write("c", "o", 0, make([]byte, 2*chunkSize))}, nil, 2 * chunkSize},
		{"one chunk over", 2 * chunkSize, []objstore.Op{objstore.Write("c", "o", 0, make([]byte, 2*chunkSize+1))}, objstore.ErrNoSpace, 0},
		{"over in the second write", 3 * chunkSize, []objstore.Op{
			objstore.Write("c", "a", 0, make([]byte, 2*chunkSize)), objstore.Write("c", "b", 0, make([]byte, 2*chunkSize)),
		}, objstore.ErrNoSpace, 0},
		{"freed space is reusable in the same transaction", 2 * chunkSize, []objstore.Op{
			objstore.Write("c", "a", 0, make([]byte, 2*chunkSize)), objstore.Remove("c", "a"),
			objstore.Write("c", "b", 0, make([]byte, 2*chunkSize)),
		}, nil, 2 * chunkSize},
		{"a clone counts again", 3 * chunkSize, []objstore.Op{
			objstore.Write("c", "a", 0, make([]byte, 2*chunkSize)), objstore.Clone("c", "a", "b"),
		}, objstore.ErrNoSpace, 0},
		{"unlimited store, far offset", 0, []objstore.Op{objstore.Write("c", "o", 1<<60, []byte{1})}, nil, chunkSize},
		{"unlimited store, huge truncate", 0, []objstore.Op{objstore.Touch("c", "o"), objstore.Truncate("c", "o", 1<<62)}, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New("u", tt.capacity)
			if err := s.Commit(ctx, []objstore.Op{objstore.CreateCollection("c")}); err != nil {
				t.Fatal(err)
			}
			if err := s.Commit(ctx, tt.ops); !errors.Is(err, tt.want) {
				t.Fatalf("Commit = %v, want %v", err, tt.want)
			}
			if fs, _ := s.Statfs(ctx); fs.Used != tt.used {
				t.Fatalf("Used = %d, want %d", fs.Used, tt.used)
			}
		})
	}
}
