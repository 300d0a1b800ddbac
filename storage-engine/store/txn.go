package store

import (
	"slices"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
)

// opKind identifies a transaction operation.
type opKind uint8

const (
	opCreateCollection opKind = iota + 1
	opRemoveCollection
	opTouch
	opWrite
	opZero
	opTruncate
	opRemove
	opSetAttr
	opRmAttr
	opOmapSet
	opOmapRmKeys
	opOmapClear
	opOmapSetHeader
	opClone
	opRename
)

var opNames = map[opKind]string{
	opCreateCollection: "create collection", opRemoveCollection: "remove collection",
	opTouch: "touch", opWrite: "write", opZero: "zero", opTruncate: "truncate", opRemove: "remove",
	opSetAttr: "setattr", opRmAttr: "rmattr", opOmapSet: "omap set", opOmapRmKeys: "omap rm keys",
	opOmapClear: "omap clear", opOmapSetHeader: "omap set header", opClone: "clone", opRename: "rename",
}

func (k opKind) String() string { return opNames[k] }

type op struct {
	kind   opKind
	c, o   string
	dst    string // clone / rename target
	dc     string // clone: the target's collection (c for a clone within one collection)
	off    uint64
	length uint64
	data   []byte
	name   string
	kvs    map[string][]byte
	keys   []string
	// nocache: with Options.BufferedWrites, the written data leaves the cache once committed.
	nocache bool
	// sums: for a write of at least sumMinLen at a sumBlock-aligned offset, the CRC-32C of each
	// whole sumBlock of data (copySummed, or blockSums for WriteOwned); nil otherwise.
	sums []uint32
}

// Transaction is an ordered batch of operations applied atomically by Store.Commit: after a crash
// either all of them are visible or none. Build it with NewTransaction and the methods below; the
// methods copy their arguments, so callers may reuse buffers (WriteOwned excepted). A Transaction is not safe for
// concurrent use and must not be changed after it is passed to Commit.
//
// Operations see the effects of the earlier operations of the same transaction.
type Transaction struct {
	ops   []op
	bytes int
}

// NewTransaction returns an empty transaction.
func NewTransaction() *Transaction { return &Transaction{} }

// Len is the number of operations.
func (t *Transaction) Len() int { return len(t.ops) }

func (t *Transaction) add(o op) *Transaction {
	t.ops = append(t.ops, o)
	t.bytes += len(o.data)
	return t
}

// CreateCollection creates collection c (ErrExists if it exists).
func (t *Transaction) CreateCollection(c string) *Transaction {
	return t.add(op{kind: opCreateCollection, c: c})
}

// RemoveCollection removes the empty collection c (ErrNotEmpty if it holds objects).
func (t *Transaction) RemoveCollection(c string) *Transaction {
	return t.add(op{kind: opRemoveCollection, c: c})
}

// Touch creates object o if it does not exist.
func (t *Transaction) Touch(c, o string) *Transaction { return t.add(op{kind: opTouch, c: c, o: o}) }

// Write writes data at off, creating the object if needed and extending its size.
func (t *Transaction) Write(c, o string, off uint64, data []byte) *Transaction {
	// The copy is block aligned in memory, so the block-aligned parts of a block-aligned write go
	// to the device without another copy.
	cp := blockdev.AlignedBuffer(len(data))
	var sums []uint32
	if off%sumBlock == 0 && len(data) >= sumMinLen {
		sums = copySummed(cp, data)
	} else {
		copy(cp, data)
	}
	return t.add(op{kind: opWrite, c: c, o: o, off: off, data: cp, sums: sums, length: uint64(len(data))})
}

// WriteOwned is Write without its copy where it can: the transaction takes data over instead.
// The caller must not modify data from the call on, not even after Commit returns: the store
// writes from it and may keep referring to blocks of it (its deferred writes and the space it
// prepares do); the store itself never writes to it. A caller hands over a buffer it allocated
// for this write alone, such as the data a request decoded. Data that is not aligned in memory
// (blockdev.Alignment) is copied as Write copies it, since the device writes from aligned memory.
func (t *Transaction) WriteOwned(c, o string, off uint64, data []byte) *Transaction {
	if !blockdev.IsAligned(data, blockdev.Alignment) || len(data) == 0 {
		return t.Write(c, o, off, data)
	}
	var sums []uint32
	if off%sumBlock == 0 && len(data) >= sumMinLen {
		sums = blockSums(data)
	}
	data = data[:len(data):len(data)] // an append by the store must not reach the caller's memory
	return t.add(op{kind: opWrite, c: c, o: o, off: off, data: data, sums: sums, length: uint64(len(data))})
}

// Checksums computed while copying.
//
// A large write's data is copied once (Write) and checksummed once, for its prepared units
// (prepare.go). Done apart, the checksum pass reads the whole copy back from memory: a 1 MiB
// write no longer fits in the CPU's cache, and the pass cost about as much as the copy. Write
// checksums each block right after copying it, while the block is in the cache, and prepare
// uses those checksums when the store's checksum block is sumBlock (the default) and the
// prepared part starts on a block of them; otherwise it computes its own.
const (
	// sumBlock is the block of the checksums Write computes: the default checksum block size.
	sumBlock = 4096
	// sumMinLen is the shortest write Write checksums: shorter ones are never prepared
	// (Store.minPrepare is at least PreferDeferredSize, 32 KiB or more by default), and the
	// committer checksums their blocks as they are written or merged.
	sumMinLen = 64 << 10
)

// copySummed copies src into dst (as long) and returns the CRC-32C of each whole sumBlock of
// it, each computed right after the block's copy.
func copySummed(dst, src []byte) []uint32 {
	sums := make([]uint32, len(src)/sumBlock)
	for i := range sums {
		b := dst[i*sumBlock : (i+1)*sumBlock]
		copy(b, src[i*sumBlock:])
		sums[i] = checksum(b)
	}
	copy(dst[len(sums)*sumBlock:], src[len(sums)*sumBlock:])
	return sums
}

// blockSums returns the CRC-32C of each whole sumBlock of data: copySummed's checksums, for data
// that is not copied.
func blockSums(data []byte) []uint32 {
	sums := make([]uint32, len(data)/sumBlock)
	for i := range sums {
		sums[i] = checksum(data[i*sumBlock : (i+1)*sumBlock])
	}
	return sums
}

// sumsAt returns the checksums Write computed for the blocks of o.data from byte at on, when they
// are the store's checksums (block size csumBlock) and at starts one of their blocks; else nil.
func (o *op) sumsAt(at, csumBlock uint64) []uint32 {
	if o.sums == nil || csumBlock != sumBlock || at%sumBlock != 0 {
		return nil
	}
	return o.sums[at/sumBlock:]
}

// WriteNoCache is Write with a no-cache hint: with Options.BufferedWrites, the data is not kept
// in the buffer cache once the transaction has committed (without the option, no written data
// is).
func (t *Transaction) WriteNoCache(c, o string, off uint64, data []byte) *Transaction {
	t.Write(c, o, off, data)
	t.ops[len(t.ops)-1].nocache = true
	return t
}

// Zero makes [off, off+length) read as zeros (freeing whole allocation units), creating the object
// if needed and extending its size to off+length.
func (t *Transaction) Zero(c, o string, off, length uint64) *Transaction {
	return t.add(op{kind: opZero, c: c, o: o, off: off, length: length})
}

// Truncate sets the object's size; bytes past a shrunk size are freed and read as zeros if the
// object grows again. The object must exist.
func (t *Transaction) Truncate(c, o string, size uint64) *Transaction {
	return t.add(op{kind: opTruncate, c: c, o: o, off: size})
}

// Remove deletes object o with its data, xattrs and omap (ErrNotFound if absent).
func (t *Transaction) Remove(c, o string) *Transaction { return t.add(op{kind: opRemove, c: c, o: o}) }

// SetAttr sets an extended attribute. The object must exist.
func (t *Transaction) SetAttr(c, o, name string, value []byte) *Transaction {
	return t.add(op{kind: opSetAttr, c: c, o: o, name: name, data: slices.Clone(value)})
}

// RmAttr removes an extended attribute (a missing attribute is not an error). The object must exist.
func (t *Transaction) RmAttr(c, o, name string) *Transaction {
	return t.add(op{kind: opRmAttr, c: c, o: o, name: name})
}

// OmapSet sets omap entries. The object must exist.
func (t *Transaction) OmapSet(c, o string, kvs map[string][]byte) *Transaction {
	cp := make(map[string][]byte, len(kvs))
	for k, v := range kvs {
		cp[k] = slices.Clone(v)
	}
	return t.add(op{kind: opOmapSet, c: c, o: o, kvs: cp})
}

// OmapRmKeys removes omap entries (missing keys are ignored). The object must exist.
func (t *Transaction) OmapRmKeys(c, o string, keys ...string) *Transaction {
	return t.add(op{kind: opOmapRmKeys, c: c, o: o, keys: slices.Clone(keys)})
}

// OmapClear removes every omap entry and the omap header. The object must exist.
func (t *Transaction) OmapClear(c, o string) *Transaction {
	return t.add(op{kind: opOmapClear, c: c, o: o})
}

// OmapSetHeader sets the omap header. The object must exist.
func (t *Transaction) OmapSetHeader(c, o string, header []byte) *Transaction {
	return t.add(op{kind: opOmapSetHeader, c: c, o: o, data: slices.Clone(header)})
}

// Clone makes dst a copy of src (data, xattrs, omap) in collection c, replacing dst if it exists.
// Data is shared copy-on-write: no data is copied until one of them is overwritten.
func (t *Transaction) Clone(c, src, dst string) *Transaction {
	return t.add(op{kind: opClone, c: c, o: src, dc: c, dst: dst})
}

// CloneTo makes object dst of collection dc a copy of object src of collection c (data, xattrs,
// omap), replacing dst if it exists; dc must exist (ErrNotFound). Like Clone it copies no data:
// dst maps src's extents and each allocation unit they cover gains a reference, so its cost grows
// with the units src maps (metadata only), not with its size. Clone(c, src, dst) is
// CloneTo(c, src, c, dst).
func (t *Transaction) CloneTo(c, src, dc, dst string) *Transaction {
	return t.add(op{kind: opClone, c: c, o: src, dc: dc, dst: dst})
}

// Rename renames src to dst within collection c (ErrExists if dst exists).
func (t *Transaction) Rename(c, src, dst string) *Transaction {
	return t.add(op{kind: opRename, c: c, o: src, dst: dst})
}
