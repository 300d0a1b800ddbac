package replica

import "context"

// Local is the coordinator's replica on its own node: I/O goes through the node's fence (Node)
// straight to the local volume, without a network hop. Its first request binds it to the
// incarnation of the volume it finds (Incarnated); from then on it reaches that copy or none.
type Local struct {
	node           *Node
	name           string
	storeUUID, vol string
	bound          binding
}

var (
	_ Syncer            = (*Local)(nil)
	_ NoCacheReader     = (*Local)(nil)
	_ NoCacheReaderInto = (*Local)(nil)
	_ WriteVerifier     = (*Local)(nil)
	_ Incarnated        = (*Local)(nil)
)

// NewLocal returns the replica of volume id on store storeUUID of node, named name.
func NewLocal(node *Node, name, storeUUID, id string) *Local {
	return &Local{node: node, name: name, storeUUID: storeUUID, vol: id}
}

// Name implements Replica.
func (l *Local) Name() string { return l.name }

// Incarnation implements Incarnated.
func (l *Local) Incarnation() string { return l.bound.get() }

// ref returns the Ref of the copy, binding l to the volume's incarnation on the first call.
func (l *Local) ref(ctx context.Context) (Ref, error) {
	ref := Ref{StoreUUID: l.storeUUID, Volume: l.vol, Incarnation: l.bound.get()}
	if ref.Incarnation != "" {
		return ref, nil
	}
	inc, err := l.node.Incarnation(ctx, ref)
	if err != nil {
		return Ref{}, err
	}
	if err := l.bound.bind(inc); err != nil {
		return Ref{}, err
	}
	ref.Incarnation = l.bound.get()
	return ref, nil
}

// Write implements Replica.
func (l *Local) Write(ctx context.Context, gen uint64, off int64, data []byte) error {
	ref, err := l.ref(ctx)
	if err != nil {
		return err
	}
	return l.node.Write(ctx, ref, gen, off, data)
}

// WriteVerify implements WriteVerifier.
func (l *Local) WriteVerify(ctx context.Context, gen uint64, off int64, data []byte, blockSize int64) (Verified, error) {
	ref, err := l.ref(ctx)
	if err != nil {
		return Verified{}, err
	}
	return l.node.WriteVerify(ctx, ref, gen, off, data, blockSize)
}

// Trim implements Replica.
func (l *Local) Trim(ctx context.Context, gen uint64, off, length int64) error {
	ref, err := l.ref(ctx)
	if err != nil {
		return err
	}
	return l.node.Trim(ctx, ref, gen, off, length)
}

// Flush implements Replica.
func (l *Local) Flush(ctx context.Context, gen uint64) error {
	ref, err := l.ref(ctx)
	if err != nil {
		return err
	}
	return l.node.Flush(ctx, ref, gen)
}

// Read implements Replica.
func (l *Local) Read(ctx context.Context, gen uint64, off, length int64) ([]byte, error) {
	ref, err := l.ref(ctx)
	if err != nil {
		return nil, err
	}
	return l.node.Read(ctx, ref, gen, off, length)
}

// ReadNoCache implements NoCacheReader: Read without the node's data cache.
func (l *Local) ReadNoCache(ctx context.Context, gen uint64, off, length int64) ([]byte, error) {
	ref, err := l.ref(ctx)
	if err != nil {
		return nil, err
	}
	return l.node.ReadNoCache(ctx, ref, gen, off, length)
}

// ReadNoCacheInto implements NoCacheReaderInto.
func (l *Local) ReadNoCacheInto(ctx context.Context, gen uint64, off int64, p []byte) error {
	ref, err := l.ref(ctx)
	if err != nil {
		return err
	}
	return l.node.ReadNoCacheInto(ctx, ref, gen, off, p)
}

// Extents implements Syncer.
func (l *Local) Extents(ctx context.Context, gen uint64) ([]Extent, int64, error) {
	ref, err := l.ref(ctx)
	if err != nil {
		return nil, 0, err
	}
	return l.node.Extents(ctx, ref, gen)
}

// Checksum implements Syncer.
func (l *Local) Checksum(ctx context.Context, gen uint64, off, length, blockSize int64) ([]uint32, error) {
	ref, err := l.ref(ctx)
	if err != nil {
		return nil, err
	}
	return l.node.Checksum(ctx, ref, gen, off, length, blockSize)
}
