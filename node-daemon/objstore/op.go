package objstore

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
)

// Op is one op of a transaction. Which fields matter depends on Kind (see the constructors).
// Offsets, lengths and sizes are never negative in a valid op.
type Op struct {
	Kind       OpKind
	Collection string
	Object     string
	// Dest is the target object of Clone and Rename.
	Dest string
	// Offset is the offset of Write and Zero, and the new size of Truncate.
	Offset int64
	// Length is the length of Zero.
	Length int64
	// Data is Write's data, SetAttr's value and OmapSetHeader's header.
	Data []byte
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

// Write writes data at off, creating the object if needed and extending its size.
func Write(c, o string, off int64, data []byte) Op {
	return Op{Kind: OpWrite, Collection: c, Object: o, Offset: off, Data: data}
}

// Zero makes [off, off+length) read as zeros, creating the object if needed and extending its size.
func Zero(c, o string, off, length int64) Op {
	return Op{Kind: OpZero, Collection: c, Object: o, Offset: off, Length: length}
}

// Truncate sets the size of the existing object o.
func Truncate(c, o string, size int64) Op {
	return Op{Kind: OpTruncate, Collection: c, Object: o, Offset: size}
}

// Remove deletes object o with its data, xattrs and omap; ErrNotFound if absent.
func Remove(c, o string) Op { return Op{Kind: OpRemove, Collection: c, Object: o} }

// SetAttr sets an extended attribute of the existing object o.
func SetAttr(c, o, name string, value []byte) Op {
	return Op{Kind: OpSetAttr, Collection: c, Object: o, Name: name, Data: value}
}

// RmAttr removes an extended attribute (a missing one is not an error).
func RmAttr(c, o, name string) Op { return Op{Kind: OpRmAttr, Collection: c, Object: o, Name: name} }

// OmapSetKeys sets omap entries of the existing object o.
func OmapSetKeys(c, o string, entries map[string][]byte) Op {
	return Op{Kind: OpOmapSetKeys, Collection: c, Object: o, Entries: entries}
}

// OmapRmKeys removes omap entries (missing keys are ignored).
func OmapRmKeys(c, o string, keys []string) Op {
	return Op{Kind: OpOmapRmKeys, Collection: c, Object: o, Keys: keys}
}

// OmapClear removes every omap entry and the header.
func OmapClear(c, o string) Op { return Op{Kind: OpOmapClear, Collection: c, Object: o} }

// OmapSetHeader sets the omap header.
func OmapSetHeader(c, o string, header []byte) Op {
	return Op{Kind: OpOmapSetHeader, Collection: c, Object: o, Data: header}
}

// Clone makes dst a copy of src in collection c, replacing dst if it exists.
func Clone(c, src, dst string) Op { return Op{Kind: OpClone, Collection: c, Object: src, Dest: dst} }

// Rename renames src to dst within collection c; ErrExists if dst exists.
func Rename(c, src, dst string) Op { return Op{Kind: OpRename, Collection: c, Object: src, Dest: dst} }
