package server

import (
	"fmt"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
)

// decodeOp turns a protobuf op into a store op. It only decodes: a missing ref or name becomes an
// empty one, which objstore.Op.Validate refuses (the one place that validates ops, run by Commit
// and by every store), so validation and its messages live in one place. Only an op with no kind
// is an error here.
func decodeOp(p *nodepb.Op) (objstore.Op, error) {
	switch o := p.GetOp().(type) {
	case *nodepb.Op_CreateCollection:
		return objstore.CreateCollection(o.CreateCollection.GetCollection()), nil
	case *nodepb.Op_RemoveCollection:
		return objstore.RemoveCollection(o.RemoveCollection.GetCollection()), nil
	case *nodepb.Op_Touch:
		r := o.Touch.GetRef()
		return objstore.Touch(r.GetCollection(), r.GetObject()), nil
	case *nodepb.Op_Write:
		r := o.Write.GetRef()
		// The request's data was decoded for this op alone: the store may write from it.
		return objstore.WriteOwned(r.GetCollection(), r.GetObject(), o.Write.GetOffset(), o.Write.GetData()), nil
	case *nodepb.Op_Zero:
		r := o.Zero.GetRef()
		return objstore.Zero(r.GetCollection(), r.GetObject(), o.Zero.GetOffset(), o.Zero.GetLength()), nil
	case *nodepb.Op_Truncate:
		r := o.Truncate.GetRef()
		return objstore.Truncate(r.GetCollection(), r.GetObject(), o.Truncate.GetSize()), nil
	case *nodepb.Op_Remove:
		r := o.Remove.GetRef()
		return objstore.Remove(r.GetCollection(), r.GetObject()), nil
	case *nodepb.Op_SetAttr:
		r := o.SetAttr.GetRef()
		return objstore.SetAttr(r.GetCollection(), r.GetObject(), o.SetAttr.GetName(), o.SetAttr.GetValue()), nil
	case *nodepb.Op_RmAttr:
		r := o.RmAttr.GetRef()
		return objstore.RmAttr(r.GetCollection(), r.GetObject(), o.RmAttr.GetName()), nil
	case *nodepb.Op_OmapSetKeys:
		r := o.OmapSetKeys.GetRef()
		return objstore.OmapSetKeys(r.GetCollection(), r.GetObject(), o.OmapSetKeys.GetEntries()), nil
	case *nodepb.Op_OmapRmKeys:
		r := o.OmapRmKeys.GetRef()
		return objstore.OmapRmKeys(r.GetCollection(), r.GetObject(), o.OmapRmKeys.GetKeys()), nil
	case *nodepb.Op_OmapClear:
		r := o.OmapClear.GetRef()
		return objstore.OmapClear(r.GetCollection(), r.GetObject()), nil
	case *nodepb.Op_OmapSetHeader:
		r := o.OmapSetHeader.GetRef()
		return objstore.OmapSetHeader(r.GetCollection(), r.GetObject(), o.OmapSetHeader.GetHeader()), nil
	case *nodepb.Op_Clone:
		r := o.Clone.GetSource()
		return objstore.Clone(r.GetCollection(), r.GetObject(), o.Clone.GetDest()), nil
	case *nodepb.Op_Rename:
		r := o.Rename.GetSource()
		return objstore.Rename(r.GetCollection(), r.GetObject(), o.Rename.GetDest()), nil
	}
	return objstore.Op{}, fmt.Errorf("op is empty or of an unknown kind: %w", objstore.ErrInvalid)
}
