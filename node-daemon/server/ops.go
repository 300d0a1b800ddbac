package server

import (
	"errors"
	"fmt"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
)

// convertOp turns a protobuf op into a store op, validating names, offsets and lengths.
func convertOp(p *nodepb.Op) (objstore.Op, error) {
	ref := func(r *nodepb.ObjectRef) (string, string, error) {
		if r == nil || r.GetCollection() == "" || r.GetObject() == "" {
			return "", "", errors.New("ref needs a collection and an object")
		}
		return r.GetCollection(), r.GetObject(), nil
	}
	nonNeg := func(name string, v int64) error {
		if v < 0 {
			return fmt.Errorf("%s %d is negative", name, v)
		}
		return nil
	}
	switch o := p.GetOp().(type) {
	case *nodepb.Op_CreateCollection:
		if o.CreateCollection.GetCollection() == "" {
			return objstore.Op{}, errors.New("create_collection: collection is empty")
		}
		return objstore.CreateCollection(o.CreateCollection.GetCollection()), nil
	case *nodepb.Op_RemoveCollection:
		if o.RemoveCollection.GetCollection() == "" {
			return objstore.Op{}, errors.New("remove_collection: collection is empty")
		}
		return objstore.RemoveCollection(o.RemoveCollection.GetCollection()), nil
	case *nodepb.Op_Touch:
		c, ob, err := ref(o.Touch.GetRef())
		return objstore.Touch(c, ob), wrapOp("touch", err)
	case *nodepb.Op_Write:
		c, ob, err := ref(o.Write.GetRef())
		if err == nil {
			err = nonNeg("offset", o.Write.GetOffset())
		}
		return objstore.Write(c, ob, o.Write.GetOffset(), o.Write.GetData()), wrapOp("write", err)
	case *nodepb.Op_Zero:
		c, ob, err := ref(o.Zero.GetRef())
		if err == nil {
			err = errors.Join(nonNeg("offset", o.Zero.GetOffset()), nonNeg("length", o.Zero.GetLength()))
		}
		return objstore.Zero(c, ob, o.Zero.GetOffset(), o.Zero.GetLength()), wrapOp("zero", err)
	case *nodepb.Op_Truncate:
		c, ob, err := ref(o.Truncate.GetRef())
		if err == nil {
			err = nonNeg("size", o.Truncate.GetSize())
		}
		return objstore.Truncate(c, ob, o.Truncate.GetSize()), wrapOp("truncate", err)
	case *nodepb.Op_Remove:
		c, ob, err := ref(o.Remove.GetRef())
		return objstore.Remove(c, ob), wrapOp("remove", err)
	case *nodepb.Op_SetAttr:
		c, ob, err := ref(o.SetAttr.GetRef())
		if err == nil && o.SetAttr.GetName() == "" {
			err = errors.New("name is empty")
		}
		return objstore.SetAttr(c, ob, o.SetAttr.GetName(), o.SetAttr.GetValue()), wrapOp("set_attr", err)
	case *nodepb.Op_RmAttr:
		c, ob, err := ref(o.RmAttr.GetRef())
		if err == nil && o.RmAttr.GetName() == "" {
			err = errors.New("name is empty")
		}
		return objstore.RmAttr(c, ob, o.RmAttr.GetName()), wrapOp("rm_attr", err)
	case *nodepb.Op_OmapSetKeys:
		c, ob, err := ref(o.OmapSetKeys.GetRef())
		return objstore.OmapSetKeys(c, ob, o.OmapSetKeys.GetEntries()), wrapOp("omap_set_keys", err)
	case *nodepb.Op_OmapRmKeys:
		c, ob, err := ref(o.OmapRmKeys.GetRef())
		return objstore.OmapRmKeys(c, ob, o.OmapRmKeys.GetKeys()), wrapOp("omap_rm_keys", err)
	case *nodepb.Op_OmapClear:
		c, ob, err := ref(o.OmapClear.GetRef())
		return objstore.OmapClear(c, ob), wrapOp("omap_clear", err)
	case *nodepb.Op_OmapSetHeader:
		c, ob, err := ref(o.OmapSetHeader.GetRef())
		return objstore.OmapSetHeader(c, ob, o.OmapSetHeader.GetHeader()), wrapOp("omap_set_header", err)
	case *nodepb.Op_Clone:
		c, ob, err := ref(o.Clone.GetSource())
		if err == nil && o.Clone.GetDest() == "" {
			err = errors.New("dest is empty")
		}
		return objstore.Clone(c, ob, o.Clone.GetDest()), wrapOp("clone", err)
	case *nodepb.Op_Rename:
		c, ob, err := ref(o.Rename.GetSource())
		if err == nil && o.Rename.GetDest() == "" {
			err = errors.New("dest is empty")
		}
		return objstore.Rename(c, ob, o.Rename.GetDest()), wrapOp("rename", err)
	default:
		return objstore.Op{}, errors.New("op is empty or of an unknown kind")
	}
}

func wrapOp(name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", name, err)
}
