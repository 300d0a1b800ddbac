package replvol

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
	"github.com/cobaltstore/cobalt/node-daemon/volume"
)

// rotStore is a store whose blocks can rot underneath the engine: a rotten range has its bytes
// changed behind the store's back (as a device's bit rot) and every read touching it fails with
// objstore.ErrCorrupt, as the engine's crc32c verification does, until a commit overwrites,
// zeroes, truncates or removes all of it.
type rotStore struct {
	objstore.Store
	mu   sync.Mutex // guards rot, hits and failing
	rot  []rotRange
	hits int // reads refused
	// failing, when set, fails every commit: the store's device has failed under the engine.
	failing error
}

// fail makes every commit fail with err from now on (nil: commits work again).
func (s *rotStore) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing = err
}

type rotRange struct {
	c, o        string
	off, length int64
}

func (r rotRange) overlaps(c, o string, off, length int64) bool {
	return r.c == c && r.o == o && off < r.off+r.length && r.off < off+length
}

func (s *rotStore) Read(ctx context.Context, c, o string, off, length int64) ([]byte, error) {
	s.mu.Lock()
	for _, r := range s.rot {
		if r.overlaps(c, o, off, length) {
			s.hits++
			s.mu.Unlock()
			return nil, fmt.Errorf("read %s/%s at %d: blob crc32c mismatch: %w", c, o, r.off, objstore.ErrCorrupt)
		}
	}
	s.mu.Unlock()
	return s.Store.Read(ctx, c, o, off, length)
}

func (s *rotStore) Commit(ctx context.Context, ops []objstore.Op) error {
	s.mu.Lock()
	failing := s.failing
	s.mu.Unlock()
	if failing != nil {
		return fmt.Errorf("commit %d ops: %w", len(ops), failing)
	}
	if err := s.Store.Commit(ctx, ops); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, op := range ops {
		s.rot = slices.DeleteFunc(s.rot, func(r rotRange) bool {
			switch op.Kind {
			case objstore.OpWrite:
				return r.c == op.Collection && r.o == op.Object && op.Offset <= r.off && r.off+r.length <= op.Offset+int64(len(op.Data))
			case objstore.OpZero:
				return r.c == op.Collection && r.o == op.Object && op.Offset <= r.off && r.off+r.length <= op.Offset+op.Length
			case objstore.OpTruncate:
				return r.c == op.Collection && r.o == op.Object && op.Offset <= r.off
			case objstore.OpRemove:
				return r.c == op.Collection && r.o == op.Object
			case objstore.OpRemoveCollection:
				return r.c == op.Collection
			}
			return false
		})
	}
	return nil
}

// rotten reports whether any rotten range is left and how many reads were refused.
func (s *rotStore) rotten() (left bool, hits int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rot) > 0, s.hits
}

// damage changes length bytes of the test volume at volume offset off underneath the engine
// (each byte inverted); with rot, reads of them then fail as corrupt, otherwise they read back
// changed (a silent divergence no checksum of the engine catches, as a write that landed on one
// copy only). The range must lie in one stripe of a volume with the default stripe size.
func (n *testNode) damage(t *testing.T, off, length int64, rot bool) {
	t.Helper()
	ctx := context.Background()
	c, o, objOff := volume.CollectionName(testUID), volume.StripeName(off/volume.DefaultStripeSize), off%volume.DefaultStripeSize
	if objOff+length > volume.DefaultStripeSize {
		t.Fatalf("damage [%d, +%d) crosses a stripe", off, length)
	}
	data, err := n.rot.Store.Read(ctx, c, o, objOff, length)
	if err != nil {
		t.Fatalf("read %s/%s underneath on %s: %v", c, o, n.store, err)
	}
	if int64(len(data)) != length {
		t.Fatalf("read %d bytes of %s/%s underneath on %s, want %d (damage written data)", len(data), c, o, n.store, length)
	}
	for i := range data {
		data[i] = ^data[i]
	}
	if err := n.rot.Store.Commit(ctx, []objstore.Op{objstore.Write(c, o, objOff, data)}); err != nil {
		t.Fatalf("damage %s/%s on %s: %v", c, o, n.store, err)
	}
	if rot {
		n.rot.mu.Lock()
		n.rot.rot = append(n.rot.rot, rotRange{c: c, o: o, off: objOff, length: length})
		n.rot.mu.Unlock()
	}
}
