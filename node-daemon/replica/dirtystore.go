package replica

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
)

// DirtyLogAttr is the volume user attribute (volume.Manager.SetUserAttr) of the coordinator's
// local replica that holds the coordinator's persisted dirty log (see DirtyLog and DirtyStore).
const DirtyLogAttr = "replica.dirtylog"

// MemDirtyStore is a DirtyStore in memory (it survives a new Coordinator, not a process). It is
// safe for concurrent use.
type MemDirtyStore struct {
	mu   sync.Mutex
	data []byte
}

var _ DirtyStore = (*MemDirtyStore)(nil)

// Load implements DirtyStore.
func (m *MemDirtyStore) Load(context.Context) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.data), nil
}

// Save implements DirtyStore.
func (m *MemDirtyStore) Save(_ context.Context, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data = slices.Clone(data)
	return nil
}

// localDirtyStore keeps the dirty log in attribute DirtyLogAttr of the local replica's volume,
// through the node's fence.
type localDirtyStore struct {
	l   *Local
	gen uint64
}

// DirtyStore returns the store of the dirty log of a coordinator of generation gen on the local
// replica's volume. It goes through the node's fence like the replica's I/O, so a coordinator of
// an older generation cannot overwrite the log of a newer one.
func (l *Local) DirtyStore(gen uint64) DirtyStore { return localDirtyStore{l: l, gen: gen} }

// Load implements DirtyStore.
func (s localDirtyStore) Load(ctx context.Context) ([]byte, error) {
	ref, err := s.l.ref(ctx)
	if err != nil {
		return nil, err
	}
	return s.l.node.LoadDirtyLog(ctx, ref, s.gen)
}

// Save implements DirtyStore.
func (s localDirtyStore) Save(ctx context.Context, data []byte) error {
	ref, err := s.l.ref(ctx)
	if err != nil {
		return err
	}
	return s.l.node.SaveDirtyLog(ctx, ref, s.gen, data)
}

// LoadDirtyLog returns the dirty log saved on the volume by a coordinator (nil when none was),
// for a coordinator of generation gen.
func (n *Node) LoadDirtyLog(ctx context.Context, ref Ref, gen uint64) ([]byte, error) {
	id := ref.Volume
	m, release, err := n.admit(ctx, ref, gen)
	if err != nil {
		return nil, err
	}
	defer release()
	b, err := m.UserAttr(ctx, id, DirtyLogAttr)
	if errors.Is(err, objstore.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("replica: load dirty log of volume %q: %w", id, err)
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

// SaveDirtyLog durably replaces the dirty log saved on the volume, for a coordinator of
// generation gen.
func (n *Node) SaveDirtyLog(ctx context.Context, ref Ref, gen uint64, data []byte) error {
	id := ref.Volume
	m, release, err := n.admit(ctx, ref, gen)
	if err != nil {
		return err
	}
	defer release()
	if err := m.SetUserAttr(ctx, id, DirtyLogAttr, data); err != nil {
		return fmt.Errorf("replica: save dirty log of volume %q: %w", id, err)
	}
	return nil
}
