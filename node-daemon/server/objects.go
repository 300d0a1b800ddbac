package server

import (
	"context"
	"fmt"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
)

// objectService implements nodepb.ObjectServiceServer.
type objectService struct {
	nodepb.UnimplementedObjectServiceServer
	stores *Stores
}

func (s *objectService) store(uuid string) (objstore.Store, error) {
	m, err := s.stores.Get(uuid)
	if err != nil {
		return nil, toStatus(err)
	}
	return m.Store, nil
}

func checkRef(ref *nodepb.ObjectRef) error {
	if ref == nil {
		return invalid("ref is missing")
	}
	if ref.GetCollection() == "" {
		return invalid("ref.collection is empty")
	}
	if ref.GetObject() == "" {
		return invalid("ref.object is empty")
	}
	return nil
}

func (s *objectService) Commit(ctx context.Context, req *nodepb.CommitRequest) (*nodepb.CommitResponse, error) {
	st, err := s.store(req.GetStoreUuid())
	if err != nil {
		return nil, err
	}
	if len(req.GetOps()) == 0 {
		return nil, invalid("transaction has no ops")
	}
	if len(req.GetOps()) > nodepb.MaxOps {
		return nil, invalid(fmt.Sprintf("transaction has %d ops, at most %d allowed", len(req.GetOps()), nodepb.MaxOps))
	}
	ops := make([]objstore.Op, 0, len(req.GetOps()))
	for i, p := range req.GetOps() {
		op, err := decodeOp(p)
		if err == nil {
			err = op.Validate() // the store validates again; this names the op in the message
		}
		if err != nil {
			return nil, invalid(fmt.Sprintf("ops[%d]: %v", i, err))
		}
		ops = append(ops, op)
	}
	if err := st.Commit(ctx, ops); err != nil {
		return nil, toStatus(err)
	}
	return &nodepb.CommitResponse{}, nil
}

func (s *objectService) Read(ctx context.Context, req *nodepb.ReadObjectRequest) (*nodepb.ReadObjectResponse, error) {
	st, err := s.store(req.GetStoreUuid())
	if err != nil {
		return nil, err
	}
	if err := checkRef(req.GetRef()); err != nil {
		return nil, err
	}
	if req.GetOffset() < 0 || req.GetLength() < 0 || req.GetLength() > nodepb.MaxIOSize {
		return nil, invalid(fmt.Sprintf("offset %d and length %d must be non-negative, length at most %d", req.GetOffset(), req.GetLength(), nodepb.MaxIOSize))
	}
	data, err := st.Read(ctx, req.GetRef().GetCollection(), req.GetRef().GetObject(), req.GetOffset(), req.GetLength())
	if err != nil {
		return nil, toStatus(err)
	}
	return &nodepb.ReadObjectResponse{Data: data}, nil
}

func (s *objectService) Stat(ctx context.Context, req *nodepb.StatRequest) (*nodepb.StatResponse, error) {
	st, err := s.store(req.GetStoreUuid())
	if err != nil {
		return nil, err
	}
	if err := checkRef(req.GetRef()); err != nil {
		return nil, err
	}
	os, err := st.Stat(ctx, req.GetRef().GetCollection(), req.GetRef().GetObject())
	if err != nil {
		return nil, toStatus(err)
	}
	return &nodepb.StatResponse{Size: os.Size}, nil
}

func (s *objectService) GetAttr(ctx context.Context, req *nodepb.GetAttrRequest) (*nodepb.GetAttrResponse, error) {
	st, err := s.store(req.GetStoreUuid())
	if err != nil {
		return nil, err
	}
	if err := checkRef(req.GetRef()); err != nil {
		return nil, err
	}
	if req.GetName() == "" {
		return nil, invalid("name is empty")
	}
	v, err := st.GetAttr(ctx, req.GetRef().GetCollection(), req.GetRef().GetObject(), req.GetName())
	if err != nil {
		return nil, toStatus(err)
	}
	return &nodepb.GetAttrResponse{Value: v}, nil
}

func (s *objectService) GetAttrs(ctx context.Context, req *nodepb.GetAttrsRequest) (*nodepb.GetAttrsResponse, error) {
	st, err := s.store(req.GetStoreUuid())
	if err != nil {
		return nil, err
	}
	if err := checkRef(req.GetRef()); err != nil {
		return nil, err
	}
	attrs, err := st.GetAttrs(ctx, req.GetRef().GetCollection(), req.GetRef().GetObject())
	if err != nil {
		return nil, toStatus(err)
	}
	return &nodepb.GetAttrsResponse{Attrs: attrs}, nil
}

func (s *objectService) OmapGet(ctx context.Context, req *nodepb.OmapGetRequest) (*nodepb.OmapGetResponse, error) {
	st, err := s.store(req.GetStoreUuid())
	if err != nil {
		return nil, err
	}
	if err := checkRef(req.GetRef()); err != nil {
		return nil, err
	}
	entries, err := st.OmapGet(ctx, req.GetRef().GetCollection(), req.GetRef().GetObject(), req.GetKeys())
	if err != nil {
		return nil, toStatus(err)
	}
	return &nodepb.OmapGetResponse{Entries: entries}, nil
}

func (s *objectService) OmapGetHeader(ctx context.Context, req *nodepb.OmapGetHeaderRequest) (*nodepb.OmapGetHeaderResponse, error) {
	st, err := s.store(req.GetStoreUuid())
	if err != nil {
		return nil, err
	}
	if err := checkRef(req.GetRef()); err != nil {
		return nil, err
	}
	h, err := st.OmapGetHeader(ctx, req.GetRef().GetCollection(), req.GetRef().GetObject())
	if err != nil {
		return nil, toStatus(err)
	}
	return &nodepb.OmapGetHeaderResponse{Header: h}, nil
}

func (s *objectService) OmapIterate(req *nodepb.OmapIterateRequest, stream nodepb.ObjectService_OmapIterateServer) error {
	st, err := s.store(req.GetStoreUuid())
	if err != nil {
		return err
	}
	if err := checkRef(req.GetRef()); err != nil {
		return err
	}
	if req.GetLimit() < 0 {
		return invalid(fmt.Sprintf("limit %d is negative", req.GetLimit()))
	}
	ctx := stream.Context()
	var (
		batch   []*nodepb.OmapEntry
		sent    int64
		sendErr error
	)
	flush := func() bool {
		if len(batch) == 0 {
			return true
		}
		sendErr = stream.Send(&nodepb.OmapIterateResponse{Entries: batch})
		batch = nil
		return sendErr == nil
	}
	err = st.OmapIterate(ctx, req.GetRef().GetCollection(), req.GetRef().GetObject(), req.GetStartAfter(),
		func(k string, v []byte) bool {
			batch = append(batch, &nodepb.OmapEntry{Key: k, Value: v})
			sent++
			if len(batch) == omapBatch && !flush() {
				return false
			}
			return req.GetLimit() == 0 || sent < req.GetLimit()
		})
	if err != nil {
		return toStatus(err)
	}
	if !flush() || sendErr != nil {
		return sendErr
	}
	return nil
}

func (s *objectService) ListCollections(ctx context.Context, req *nodepb.ListCollectionsRequest) (*nodepb.ListCollectionsResponse, error) {
	st, err := s.store(req.GetStoreUuid())
	if err != nil {
		return nil, err
	}
	colls, err := st.ListCollections(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &nodepb.ListCollectionsResponse{Collections: colls}, nil
}

func (s *objectService) ListObjects(ctx context.Context, req *nodepb.ListObjectsRequest) (*nodepb.ListObjectsResponse, error) {
	st, err := s.store(req.GetStoreUuid())
	if err != nil {
		return nil, err
	}
	if req.GetCollection() == "" {
		return nil, invalid("collection is empty")
	}
	limit := req.GetLimit()
	if limit < 0 || limit > nodepb.MaxListLimit {
		return nil, invalid(fmt.Sprintf("limit %d must be from 0 to %d", limit, nodepb.MaxListLimit))
	}
	if limit == 0 {
		limit = nodepb.DefaultListLimit
	}
	objs, next, err := st.ListObjects(ctx, req.GetCollection(), req.GetStart(), int(limit))
	if err != nil {
		return nil, toStatus(err)
	}
	return &nodepb.ListObjectsResponse{Objects: objs, Next: next}, nil
}
