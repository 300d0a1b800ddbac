package objstore

import "fmt"

// Applier is what an implementation provides to Apply: one method per op kind, called with
// arguments that Op.Validate has accepted, in transaction order. Each method has the semantics of
// the op's constructor in op.go; an implementation stages the effects (they become visible and
// durable only when its Commit succeeds) and returns errors wrapping this package's sentinels.
// Offsets, lengths and sizes are non-negative and off+length does not overflow.
type Applier interface {
	CreateCollection(c string) error
	RemoveCollection(c string) error
	Touch(c, o string) error
	Write(c, o string, off int64, data []byte) error
	Zero(c, o string, off, length int64) error
	Truncate(c, o string, size int64) error
	Remove(c, o string) error
	SetAttr(c, o, name string, value []byte) error
	RmAttr(c, o, name string) error
	OmapSetKeys(c, o string, entries map[string][]byte) error
	OmapRmKeys(c, o string, keys []string) error
	OmapClear(c, o string) error
	OmapSetHeader(c, o string, header []byte) error
	Clone(c, src, dst string) error
	Rename(c, src, dst string) error
	CloneTo(c, src, dc, dst string) error
}

// OwnedWriter is an Applier that can take the data of a write over (WriteOwned) instead of
// copying it. Apply calls WriteOwned for the writes made with WriteOwned, Write for the others
// and for every write when the Applier is not one.
type OwnedWriter interface {
	WriteOwned(c, o string, off int64, data []byte) error
}

// Apply validates every op, then drives a with them in order. An invalid op fails the whole
// transaction before a sees any op, so ErrInvalid never leaves staged effects behind; the first
// error of a stops Apply. Errors name the op's index and kind.
func Apply(ops []Op, a Applier) error {
	for i, op := range ops {
		if err := op.Validate(); err != nil {
			return fmt.Errorf("op %d: %w", i, err)
		}
	}
	for i, op := range ops {
		if err := applyOne(op, a); err != nil {
			return fmt.Errorf("op %d (%s): %w", i, op.Kind, err)
		}
	}
	return nil
}

// applyOne is the one switch over op kinds that every implementation shares.
func applyOne(op Op, a Applier) error {
	c, o := op.Collection, op.Object
	switch op.Kind {
	case OpCreateCollection:
		return a.CreateCollection(c)
	case OpRemoveCollection:
		return a.RemoveCollection(c)
	case OpTouch:
		return a.Touch(c, o)
	case OpWrite:
		if w, ok := a.(OwnedWriter); ok && op.Owned {
			return w.WriteOwned(c, o, op.Offset, op.Data)
		}
		return a.Write(c, o, op.Offset, op.Data)
	case OpZero:
		return a.Zero(c, o, op.Offset, op.Length)
	case OpTruncate:
		return a.Truncate(c, o, op.Offset)
	case OpRemove:
		return a.Remove(c, o)
	case OpSetAttr:
		return a.SetAttr(c, o, op.Name, op.Data)
	case OpRmAttr:
		return a.RmAttr(c, o, op.Name)
	case OpOmapSetKeys:
		return a.OmapSetKeys(c, o, op.Entries)
	case OpOmapRmKeys:
		return a.OmapRmKeys(c, o, op.Keys)
	case OpOmapClear:
		return a.OmapClear(c, o)
	case OpOmapSetHeader:
		return a.OmapSetHeader(c, o, op.Data)
	case OpClone:
		return a.Clone(c, o, op.Dest)
	case OpRename:
		return a.Rename(c, o, op.Dest)
	case OpCloneTo:
		return a.CloneTo(c, o, op.DestCollection, op.Dest)
	}
	return fmt.Errorf("unknown op kind: %w", ErrInvalid) // Validate refused it already
}
