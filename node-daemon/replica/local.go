package replica

import "context"

// Local is the coordinator's replica on its own node: I/O goes through the node's fence (Node)
// straight to the local volume, without a network hop.
type Local struct {
	node           *Node
	name           string
	storeUUID, vol string
}

var (
	_ Syncer        = (*Local)(nil)
	_ NoCacheReader = (*Local)(nil)
)

// NewLocal returns the replica of volume id on store storeUUID of node, named name.
func NewLocal(node *Node, name, storeUUID, id string) *Local {
	return &Local{node: node, name: name, storeUUID: storeUUID, vol: id}
}

// Name implements Replica.
func (l *Local) Name() string { return l.name }

// Write implements Replica.
func (l *Local) Write(ctx context.Context, gen uint64, off int64, data []byte) error {
	return l.node.Write(ctx, l.storeUUID, l.vol, gen, off, data)
}

// Trim implements Replica.
func (l *Local) Trim(ctx context.Context, gen uint64, off, length int64) error {
	return l.node.Trim(ctx, l.storeUUID, l.vol, gen, off, length)
}

// Flush implements Replica.
func (l *Local) Flush(ctx context.Context, gen uint64) error {
	return l.node.Flush(ctx, l.storeUUID, l.vol, gen)
}

// Read implements Replica.
func (l *Local) Read(ctx context.Context, gen uint64, off, length int64) ([]byte, error) {
	return l.node.Read(ctx, l.storeUUID, l.vol, gen, off, length)
}

// ReadNoCache implements NoCacheReader: Read without the node's data cache.
func (l *Local) ReadNoCache(ctx context.Context, gen uint64, off, length int64) ([]byte, error) {
	return l.node.ReadNoCache(ctx, l.storeUUID, l.vol, gen, off, length)
}

// Extents implements Syncer.
func (l *Local) Extents(ctx context.Context, gen uint64) ([]Extent, int64, error) {
	return l.node.Extents(ctx, l.storeUUID, l.vol, gen)
}

// Checksum implements Syncer.
func (l *Local) Checksum(ctx context.Context, gen uint64, off, length, blockSize int64) ([]uint32, error) {
	return l.node.Checksum(ctx, l.storeUUID, l.vol, gen, off, length, blockSize)
}
