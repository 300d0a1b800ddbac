package objstore

import (
	"fmt"
	"strconv"
)

// OpKind identifies a transaction op.
type OpKind uint8

// The op set of the storage engine's transactions.
const (
	OpCreateCollection OpKind = iota + 1
	OpRemoveCollection
	OpTouch
	OpWrite
	OpZero
	OpTruncate
	OpRemove
	OpSetAttr
	OpRmAttr
	OpOmapSetKeys
	OpOmapRmKeys
	OpOmapClear
	OpOmapSetHeader
	OpClone
	OpRename
	// OpCloneTo clones an object into another collection. It is last so that the kinds before it
	// keep their numbers.
	OpCloneTo
)

var opNames = [...]string{
	OpCreateCollection: "create_collection", OpRemoveCollection: "remove_collection",
	OpTouch: "touch", OpWrite: "write", OpZero: "zero", OpTruncate: "truncate", OpRemove: "remove",
	OpSetAttr: "set_attr", OpRmAttr: "rm_attr", OpOmapSetKeys: "omap_set_keys",
	OpOmapRmKeys: "omap_rm_keys", OpOmapClear: "omap_clear", OpOmapSetHeader: "omap_set_header",
	OpClone: "clone", OpRename: "rename", OpCloneTo: "clone_to",
}

// String is the op's name as the gRPC API spells it.
func (k OpKind) String() string {
	if int(k) < len(opNames) && opNames[k] != "" {
		return opNames[k]
	}
	return "op kind " + strconv.Itoa(int(k))
}

// Op is one op of a transaction. Which fields matter depends on Kind (see the constructors).
// Offsets, lengths and sizes are never negative in a valid op.
type Op struct {
	Kind       OpKind
	Collection string
	Object     string
	// Dest is the target object of Clone, CloneTo and Rename.
	Dest string
	// DestCollection is the target collection of CloneTo.
	DestCollection string
	// Offset is the offset of Write and Zero, and the new size of Truncate.
	Offset int64
	// Length is the length of Zero.
	Length int64
	// Data is Write's data, SetAttr's value and OmapSetHeader's header.
	Data []byte
	// Owned marks Write's Data as handed over (WriteOwned).
	Owned bool
	// Name is SetAttr's and RmAttr's attribute name.
	Name string
	// Entries are OmapSetKeys' entries.
	Entries map[string][]byte
	// Keys are OmapRmKeys' keys.
	Keys []string
}

// CreateCollection creates collection c; ErrExists if it exists.
func CreateCollection(c string) Op { return Op{Kind: OpCreateCollection, Collection: c} }

// RemoveCollection removes the empty collection c; ErrNotEmpty if it holds objects.
func RemoveCollection(c string) Op { return Op{Kind: OpRemoveCollection, Collection: c} }

// Touch creates object o if it does not exist.
func Touch(c, o string) Op { return Op{Kind: OpTouch, Collection: c, Object: o} }

// Write writes data at off, creating the object if needed and extending its size to off+len(data).
// An empty write creates the object and leaves its size as it was.
func Write(c, o string, off int64, data []byte) Op {
	return Op{Kind: OpWrite, Collection: c, Object: o, Offset: off, Data: data}
}

// WriteOwned is Write with data handed over: the caller does not modify data from the call on,
// not even once the transaction committed, so an implementation that is an OwnedWriter may write
// from it, and keep referring to it, without a copy. Data decoded from a request for this write
// alone can be handed over; a buffer its owner reuses cannot.
func WriteOwned(c, o string, off int64, data []byte) Op {
	op := Write(c, o, off, data)
	op.Owned = true
	return op
}

// Zero makes [off, off+length) read as zeros, creating the object if needed and extending its size
// to off+length. A zero of length 0 creates the object and leaves its size as it was.
func Zero(c, o string, off, length int64) Op {
	return Op{Kind: OpZero, Collection: c, Object: o, Offset: off, Length: length}
}

// Truncate sets the size of the existing object o; bytes past a shrunk size read as zeros if the
// object grows again.
func Truncate(c, o string, size int64) Op {
	return Op{Kind: OpTruncate, Collection: c, Object: o, Offset: size}
}

// Remove deletes object o with its data, xattrs and omap; ErrNotFound if absent.
func Remove(c, o string) Op { return Op{Kind: OpRemove, Collection: c, Object: o} }

// SetAttr sets an extended attribute of the existing object o.
func SetAttr(c, o, name string, value []byte) Op {
	return Op{Kind: OpSetAttr, Collection: c, Object: o, Name: name, Data: value}
}

// RmAttr removes an extended attribute of the existing object o (a missing attribute is not an
// error).
func RmAttr(c, o, name string) Op { return Op{Kind: OpRmAttr, Collection: c, Object: o, Name: name} }

// OmapSetKeys sets omap entries of the existing object o.
func OmapSetKeys(c, o string, entries map[string][]byte) Op {
	return Op{Kind: OpOmapSetKeys, Collection: c, Object: o, Entries: entries}
}

// OmapRmKeys removes omap entries of the existing object o (missing keys are ignored).
func OmapRmKeys(c, o string, keys []string) Op {
	return Op{Kind: OpOmapRmKeys, Collection: c, Object: o, Keys: keys}
}

// OmapClear removes every omap entry and the header of the existing object o.
func OmapClear(c, o string) Op { return Op{Kind: OpOmapClear, Collection: c, Object: o} }

// OmapSetHeader sets the omap header of the existing object o.
func OmapSetHeader(c, o string, header []byte) Op {
	return Op{Kind: OpOmapSetHeader, Collection: c, Object: o, Data: header}
}

// Clone makes dst a copy of src (data, attributes, omap and header) in collection c, replacing dst
// if it exists; cloning an object onto itself changes nothing.
func Clone(c, src, dst string) Op { return Op{Kind: OpClone, Collection: c, Object: src, Dest: dst} }

// CloneTo makes object dst of the existing collection dc a copy of object src of collection c
// (data, attributes, omap and header), replacing dst if it exists; cloning an object onto itself
// changes nothing. A store that shares data (the engine) copies no data: the copy costs metadata
// only, and space only once one of them is overwritten.
func CloneTo(c, src, dc, dst string) Op {
	return Op{Kind: OpCloneTo, Collection: c, Object: src, DestCollection: dc, Dest: dst}
}

// Rename renames src to dst within collection c; ErrExists if dst exists; renaming an object onto
// itself changes nothing.
func Rename(c, src, dst string) Op { return Op{Kind: OpRename, Collection: c, Object: src, Dest: dst} }

// Validate checks the fields that matter for the op's kind: names (see limits.go), offsets and
// lengths (non-negative, end representable), and the kind itself. It returns an error wrapping
// ErrInvalid; whether collections and objects exist is for the store to say.
func (op Op) Validate() error {
	if err := op.validate(); err != nil {
		return fmt.Errorf("%s: %w", op.Kind, err)
	}
	return nil
}

func (op Op) validate() error {
	switch op.Kind {
	case OpCreateCollection, OpRemoveCollection:
		return ValidateCollection(op.Collection)
	case OpTouch, OpRemove, OpOmapClear, OpOmapSetHeader:
		return ValidateRef(op.Collection, op.Object)
	case OpWrite:
		if err := ValidateRef(op.Collection, op.Object); err != nil {
			return err
		}
		return ValidateRange(op.Offset, int64(len(op.Data)))
	case OpZero:
		if err := ValidateRef(op.Collection, op.Object); err != nil {
			return err
		}
		return ValidateRange(op.Offset, op.Length)
	case OpTruncate:
		if err := ValidateRef(op.Collection, op.Object); err != nil {
			return err
		}
		return ValidateRange(op.Offset, 0)
	case OpSetAttr, OpRmAttr:
		if err := ValidateRef(op.Collection, op.Object); err != nil {
			return err
		}
		return ValidateAttrName(op.Name)
	case OpOmapSetKeys:
		if err := ValidateRef(op.Collection, op.Object); err != nil {
			return err
		}
		for k := range op.Entries {
			if err := ValidateOmapKey(k); err != nil {
				return err
			}
		}
		return nil
	case OpOmapRmKeys:
		if err := ValidateRef(op.Collection, op.Object); err != nil {
			return err
		}
		for _, k := range op.Keys {
			if err := ValidateOmapKey(k); err != nil {
				return err
			}
		}
		return nil
	case OpClone, OpRename:
		if err := ValidateRef(op.Collection, op.Object); err != nil {
			return err
		}
		if err := ValidateObject(op.Dest); err != nil {
			return fmt.Errorf("destination: %w", err)
		}
		return nil
	case OpCloneTo:
		if err := ValidateRef(op.Collection, op.Object); err != nil {
			return err
		}
		if err := ValidateRef(op.DestCollection, op.Dest); err != nil {
			return fmt.Errorf("destination: %w", err)
		}
		return nil
	default:
		return fmt.Errorf("unknown op kind: %w", ErrInvalid)
	}
}
