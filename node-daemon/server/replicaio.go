package server

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
	"github.com/cobaltstore/cobalt/node-daemon/replica"
	"github.com/cobaltstore/cobalt/node-daemon/volume"
)

// VolumeManager implements replica.Volumes.
func (s *Stores) VolumeManager(storeUUID string) (*volume.Manager, error) {
	m, err := s.Get(storeUUID)
	if err != nil {
		return nil, err
	}
	return m.Volumes, nil
}

// replicaService implements nodepb.ReplicaServiceServer over the node's fenced replicas.
type replicaService struct {
	nodepb.UnimplementedReplicaServiceServer
	node *replica.Node
}

// Replicate runs the stream's requests, at most maxIOInFlight at once, and sends each response
// when its request completes (serveStream). The handler returns only after every started request
// has answered.
func (s *replicaService) Replicate(stream nodepb.ReplicaService_ReplicateServer) error {
	return serveStream(stream.Context(), streamWorkerIdle, stream.Recv, s.one, stream.Send)
}

// one runs one request of a Replicate stream and turns its outcome into a response.
func (s *replicaService) one(ctx context.Context, req *nodepb.ReplicaRequest) (resp *nodepb.ReplicaResponse) {
	resp = &nodepb.ReplicaResponse{Id: req.GetId()}
	defer func() {
		if r := recover(); r != nil {
			resp = &nodepb.ReplicaResponse{Id: req.GetId(), Code: int32(codes.Internal), Message: "internal error in replica request"}
		}
	}()
	err := s.run(ctx, req, resp)
	var (
		stale    *replica.StaleError
		replaced *replica.ReplacedError
	)
	switch {
	case err == nil:
	case errors.As(err, &stale):
		resp.Code, resp.Message, resp.ReplicaGeneration = int32(codes.FailedPrecondition), err.Error(), stale.Recorded
	case errors.As(err, &replaced):
		resp.Code, resp.Message, resp.Incarnation = int32(codes.FailedPrecondition), err.Error(), replaced.Found
	default:
		st := status.Convert(toStatus(err))
		resp.Code, resp.Message = int32(st.Code()), st.Message()
	}
	return resp
}

func (s *replicaService) run(ctx context.Context, req *nodepb.ReplicaRequest, resp *nodepb.ReplicaResponse) error {
	ref := req.GetRef()
	if ref == nil {
		return invalid("ref is missing")
	}
	r, gen := replica.Ref{StoreUUID: ref.GetStoreUuid(), Volume: ref.GetVolumeId(), Incarnation: req.GetIncarnation()}, req.GetGeneration()
	if r.Incarnation == "" {
		// The request runs on the incarnation found now, which the response names.
		inc, err := s.node.Incarnation(ctx, r)
		if err != nil {
			return err
		}
		r.Incarnation, resp.Incarnation = inc, inc
	}
	switch op := req.GetOp().(type) {
	case *nodepb.ReplicaRequest_Write:
		if n := len(op.Write.GetData()); n > nodepb.MaxIOSize {
			return invalid(fmt.Sprintf("write of %d bytes exceeds the limit of %d", n, nodepb.MaxIOSize))
		}
		// The request's data was decoded for this write alone: the store may write from it.
		if b := op.Write.GetVerifyBlockSize(); b != 0 {
			v, err := s.node.WriteVerifyOwned(ctx, r, gen, op.Write.GetOffset(), op.Write.GetData(), b)
			resp.Verified, resp.Message = v.Verified, v.Why
			for _, d := range v.Differ {
				resp.DifferingBlocks = append(resp.DifferingBlocks, d.Index)
				resp.Checksums = append(resp.Checksums, d.Checksum)
			}
			return err
		}
		return s.node.WriteOwned(ctx, r, gen, op.Write.GetOffset(), op.Write.GetData())
	case *nodepb.ReplicaRequest_Trim:
		return s.node.Trim(ctx, r, gen, op.Trim.GetOffset(), op.Trim.GetLength())
	case *nodepb.ReplicaRequest_Flush:
		return s.node.Flush(ctx, r, gen)
	case *nodepb.ReplicaRequest_Read:
		if n := op.Read.GetLength(); n > nodepb.MaxIOSize {
			return invalid(fmt.Sprintf("read of %d bytes exceeds the limit of %d", n, nodepb.MaxIOSize))
		}
		read := s.node.Read
		if op.Read.GetNoCache() {
			read = s.node.ReadNoCache
		}
		data, err := read(ctx, r, gen, op.Read.GetOffset(), op.Read.GetLength())
		resp.Data = data
		return err
	case *nodepb.ReplicaRequest_Extents:
		extents, size, err := s.node.Extents(ctx, r, gen)
		for _, e := range extents {
			resp.Extents = append(resp.Extents, &nodepb.ReplicaExtent{Offset: e.Offset, Length: e.Length})
		}
		resp.VolumeSize = size
		return err
	case *nodepb.ReplicaRequest_Checksum:
		sums, err := s.node.Checksum(ctx, r, gen, op.Checksum.GetOffset(), op.Checksum.GetLength(), op.Checksum.GetBlockSize())
		resp.Checksums = sums
		return err
	case *nodepb.ReplicaRequest_Intent:
		in, err := s.node.Intent(ctx, r, gen)
		resp.IntentTracking, resp.IntentWhy = in.Tracking, in.Why
		for _, e := range in.Regions {
			resp.Extents = append(resp.Extents, &nodepb.ReplicaExtent{Offset: e.Offset, Length: e.Length})
		}
		return err
	case *nodepb.ReplicaRequest_ClearIntent:
		extents := make([]replica.Extent, 0, len(op.ClearIntent.GetExtents()))
		for _, e := range op.ClearIntent.GetExtents() {
			extents = append(extents, replica.Extent{Offset: e.GetOffset(), Length: e.GetLength()})
		}
		return s.node.ClearIntent(ctx, r, gen, extents, op.ClearIntent.GetAll())
	default:
		return invalid("replica request has no operation")
	}
}
