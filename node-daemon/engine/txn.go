package engine

import (
	"github.com/cobaltstore/cobalt/node-daemon/objstore"
	"github.com/cobaltstore/cobalt/storage-engine/store"
)

// txnBuilder implements objstore.Applier by adding each op to an engine transaction. It never
// fails: the engine checks existence when it commits the transaction, and objstore.Apply has
// validated names and ranges, so the int64 offsets and lengths convert to uint64 unchanged.
type txnBuilder struct{ txn *store.Transaction }

var (
	_ objstore.Applier     = txnBuilder{}
	_ objstore.OwnedWriter = txnBuilder{}
)

func (b txnBuilder) CreateCollection(c string) error { b.txn.CreateCollection(c); return nil }
func (b txnBuilder) RemoveCollection(c string) error { b.txn.RemoveCollection(c); return nil }
func (b txnBuilder) Touch(c, o string) error         { b.txn.Touch(c, o); return nil }
func (b txnBuilder) Remove(c, o string) error        { b.txn.Remove(c, o); return nil }
func (b txnBuilder) OmapClear(c, o string) error     { b.txn.OmapClear(c, o); return nil }

func (b txnBuilder) Write(c, o string, off int64, data []byte) error {
	b.txn.Write(c, o, uint64(off), data)
	return nil
}

// WriteOwned implements objstore.OwnedWriter: the engine writes from data without copying it
// when it is aligned in memory.
func (b txnBuilder) WriteOwned(c, o string, off int64, data []byte) error {
	b.txn.WriteOwned(c, o, uint64(off), data)
	return nil
}

func (b txnBuilder) Zero(c, o string, off, length int64) error {
	b.txn.Zero(c, o, uint64(off), uint64(length))
	return nil
}

func (b txnBuilder) Truncate(c, o string, size int64) error {
	b.txn.Truncate(c, o, uint64(size))
	return nil
}

func (b txnBuilder) SetAttr(c, o, name string, value []byte) error {
	b.txn.SetAttr(c, o, name, value)
	return nil
}

func (b txnBuilder) RmAttr(c, o, name string) error { b.txn.RmAttr(c, o, name); return nil }

func (b txnBuilder) OmapSetKeys(c, o string, entries map[string][]byte) error {
	b.txn.OmapSet(c, o, entries)
	return nil
}

func (b txnBuilder) OmapRmKeys(c, o string, keys []string) error {
	b.txn.OmapRmKeys(c, o, keys...)
	return nil
}

func (b txnBuilder) OmapSetHeader(c, o string, header []byte) error {
	b.txn.OmapSetHeader(c, o, header)
	return nil
}

func (b txnBuilder) Clone(c, src, dst string) error  { b.txn.Clone(c, src, dst); return nil }
func (b txnBuilder) Rename(c, src, dst string) error { b.txn.Rename(c, src, dst); return nil }

func (b txnBuilder) CloneTo(c, src, dc, dst string) error {
	b.txn.CloneTo(c, src, dc, dst)
	return nil
}
