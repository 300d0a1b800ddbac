package replica

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
	"github.com/cobaltstore/cobalt/node-daemon/volume"
)

// GenerationAttr is the volume user attribute (volume.Manager.SetUserAttr) holding the highest
// attachment generation a replica has accepted, as 8 little-endian bytes.
const GenerationAttr = "replica.generation"

// Volumes finds the volume manager of a store this node serves.
type Volumes interface {
	// VolumeManager returns the volumes of store storeUUID, or an error wrapping
	// objstore.ErrNotFound when the node does not serve it.
	VolumeManager(storeUUID string) (*volume.Manager, error)
}

// Node serves fenced I/O on the replicas a node holds: the replica service of the node API and
// the coordinator's local replica both go through it, so both obey the same fence. It is safe for
// concurrent use.
type Node struct {
	vols Volumes
	// bufs holds the buffers that comparisons read back into.
	bufs bufPool
	// mu guards the fields in this struct.
	mu struct {
		sync.Mutex
		fences map[string]*fence // by store UUID + "/" + volume ID
	}
}

// fence is the generation state of one volume.
type fence struct {
	// rw is held shared by every request while it checks the generation and runs, and exclusively
	// while a newer generation is recorded, so no request of an older generation runs after the
	// record.
	rw sync.RWMutex
	// loaded, gen, incarnation and intent are guarded by rw (held exclusively to change them):
	// gen is the recorded generation of incarnation of the volume once loaded.
	loaded      bool
	gen         uint64
	incarnation string
	// intent is the write-intent log of that incarnation.
	intent *intentLog
}

// forget drops what the fence loaded: the next request loads it again. REQUIRES: rw held
// exclusively.
func (f *fence) forget() {
	f.loaded, f.gen, f.incarnation, f.intent = false, 0, "", &intentLog{}
}

// NewNode serves the replicas of the stores vols finds.
func NewNode(vols Volumes) *Node {
	n := &Node{vols: vols}
	n.mu.fences = make(map[string]*fence)
	return n
}

func (n *Node) fence(storeUUID, id string) *fence {
	key := storeUUID + "/" + id
	n.mu.Lock()
	defer n.mu.Unlock()
	f, ok := n.mu.fences[key]
	if !ok {
		f = &fence{intent: &intentLog{}}
		n.mu.fences[key] = f
	}
	return f
}

// admit checks gen against the volume's recorded generation, recording gen first when it is newer,
// and the volume's incarnation against ref's, and returns the volume manager and the release
// function the request calls when it is done.
func (n *Node) admit(ctx context.Context, ref Ref, gen uint64) (*volume.Manager, func(), error) {
	m, _, release, err := n.admitFence(ctx, ref, gen)
	return m, release, err
}

// admitFence is admit that also returns the volume's fence (its write-intent log). While the
// request runs (until release) the volume is not deleted through Node.Delete, so it stays the
// incarnation checked here.
func (n *Node) admitFence(ctx context.Context, ref Ref, gen uint64) (*volume.Manager, *fence, func(), error) {
	id := ref.Volume
	if gen == 0 {
		return nil, nil, nil, fmt.Errorf("replica: generation 0 of volume %q: generations start at 1: %w", id, objstore.ErrInvalid)
	}
	m, err := n.vols.VolumeManager(ref.StoreUUID)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("replica: volume %q: %w", id, err)
	}
	if err := volume.ValidateID(id); err != nil {
		return nil, nil, nil, err
	}
	f := n.fence(ref.StoreUUID, id)
	for {
		f.rw.RLock()
		inc, err := m.Incarnation(ctx, id)
		if err != nil {
			f.rw.RUnlock()
			return nil, nil, nil, fmt.Errorf("replica: %w", err)
		}
		if ref.Incarnation != "" && inc != ref.Incarnation {
			f.rw.RUnlock()
			return nil, nil, nil, fmt.Errorf("volume %q: %w", id, &ReplacedError{Expected: ref.Incarnation, Found: inc})
		}
		current, cur := f.loaded && f.incarnation == inc, f.gen
		switch {
		case current && gen == cur:
			return m, f, f.rw.RUnlock, nil
		case current && gen < cur:
			f.rw.RUnlock()
			return nil, nil, nil, fmt.Errorf("volume %q: %w", id, &StaleError{Requested: gen, Recorded: cur})
		}
		f.rw.RUnlock()
		if err := n.raise(ctx, m, f, id, gen); err != nil {
			return nil, nil, nil, err
		}
	}
}

// raise loads the recorded generation if needed (again when the volume is another incarnation
// than the one loaded: its write-intent log starts afresh too) and records gen when it is newer,
// once every request already admitted has finished.
func (n *Node) raise(ctx context.Context, m *volume.Manager, f *fence, id string, gen uint64) error {
	f.rw.Lock()
	defer f.rw.Unlock()
	inc, err := m.Incarnation(ctx, id)
	if err != nil {
		return fmt.Errorf("replica: %w", err)
	}
	if !f.loaded || f.incarnation != inc {
		f.forget()
		cur, err := loadGeneration(ctx, m, id)
		if err != nil {
			return err
		}
		f.loaded, f.gen, f.incarnation = true, cur, inc
	}
	if gen <= f.gen {
		return nil
	}
	if err := m.SetUserAttr(ctx, id, GenerationAttr, binary.LittleEndian.AppendUint64(nil, gen)); err != nil {
		return fmt.Errorf("replica: record generation %d of volume %q: %w", gen, id, err)
	}
	f.gen = gen
	return nil
}

func loadGeneration(ctx context.Context, m *volume.Manager, id string) (uint64, error) {
	b, err := m.UserAttr(ctx, id, GenerationAttr)
	if errors.Is(err, objstore.ErrNotFound) {
		if _, gerr := m.Get(ctx, id); gerr != nil {
			return 0, fmt.Errorf("replica: %w", gerr) // the volume itself is missing
		}
		return 0, nil // never attached
	}
	if err != nil {
		return 0, fmt.Errorf("replica: load generation of volume %q: %w", id, err)
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("replica: generation attribute of volume %q has %d bytes: %w", id, len(b), objstore.ErrCorrupt)
	}
	return binary.LittleEndian.Uint64(b), nil
}

// Generation returns the generation volume id of store storeUUID has recorded (0 if none).
func (n *Node) Generation(ctx context.Context, storeUUID, id string) (uint64, error) {
	m, err := n.vols.VolumeManager(storeUUID)
	if err != nil {
		return 0, fmt.Errorf("replica: volume %q: %w", id, err)
	}
	f := n.fence(storeUUID, id)
	f.rw.RLock()
	defer f.rw.RUnlock()
	if f.loaded {
		if inc, err := m.Incarnation(ctx, id); err == nil && inc == f.incarnation {
			return f.gen, nil
		}
	}
	return loadGeneration(ctx, m, id)
}

// Write writes data at off of the volume, for a coordinator of generation gen. The range is
// durably marked in the volume's write-intent log before the write is applied; if the mark
// cannot be saved the write fails and is not applied.
func (n *Node) Write(ctx context.Context, ref Ref, gen uint64, off int64, data []byte) error {
	return n.write(ctx, ref, gen, off, data, false, nil)
}

// WriteOwned is Write with data handed over (volume.Manager.WriteOwned): the caller does not
// modify data from the call on, not even after it returns, and the store may write from it
// without a copy. The replica service hands over the data it decoded from a request.
func (n *Node) WriteOwned(ctx context.Context, ref Ref, gen uint64, off int64, data []byte) error {
	return n.write(ctx, ref, gen, off, data, true, nil)
}

// write is Write, or WriteOwned when owned; when the write succeeded and then is not nil, it runs
// then with the volume's manager while the fence still admits the request (WriteVerify reads the
// range back).
func (n *Node) write(ctx context.Context, ref Ref, gen uint64, off int64, data []byte, owned bool, then func(*volume.Manager) error) error {
	id := ref.Volume
	m, f, release, err := n.admitFence(ctx, ref, gen)
	if err != nil {
		return err
	}
	defer release()
	if err := f.intent.mark(ctx, m, id, off, int64(len(data))); err != nil {
		return fmt.Errorf("replica: write to volume %q at %d: %w", id, off, err)
	}
	write := m.Write
	if owned {
		write = m.WriteOwned
	}
	if err := write(ctx, id, off, data); err != nil || then == nil {
		return err
	}
	return then(m)
}

// Trim discards [off, off+length) of the volume, for a coordinator of generation gen, marking the
// range in the write-intent log first like Write.
func (n *Node) Trim(ctx context.Context, ref Ref, gen uint64, off, length int64) error {
	id := ref.Volume
	m, f, release, err := n.admitFence(ctx, ref, gen)
	if err != nil {
		return err
	}
	defer release()
	if err := f.intent.mark(ctx, m, id, off, length); err != nil {
		return fmt.Errorf("replica: trim of volume %q at %d: %w", id, off, err)
	}
	return m.Trim(ctx, id, off, length)
}

// Flush returns once every write to the volume that was acknowledged before it is durable (writes
// are durable when acknowledged, so it is a barrier), for a coordinator of generation gen. A flush
// of a newer generation is how a coordinator claims a replica.
func (n *Node) Flush(ctx context.Context, ref Ref, gen uint64) error {
	id := ref.Volume
	m, release, err := n.admit(ctx, ref, gen)
	if err != nil {
		return err
	}
	defer release()
	return m.Flush(ctx, id)
}

// Read reads length bytes at off of the volume, for a coordinator of generation gen.
func (n *Node) Read(ctx context.Context, ref Ref, gen uint64, off, length int64) ([]byte, error) {
	id := ref.Volume
	m, release, err := n.admit(ctx, ref, gen)
	if err != nil {
		return nil, err
	}
	defer release()
	return m.Read(ctx, id, off, length)
}
