package server

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
)

// IO implements the multiplexed I/O stream: its requests run through the same code as the unary
// Write and Read, at most maxIOInFlight at once, and each response is sent when its request
// completes (serveStream). The handler returns only after every started request has answered.
func (s *volumeService) IO(stream nodepb.VolumeService_IOServer) error {
	return serveStream(stream.Context(), streamWorkerIdle, stream.Recv, s.ioOne, stream.Send)
}

// ioOne runs one request of an IO stream and turns its outcome into a response.
func (s *volumeService) ioOne(ctx context.Context, req *nodepb.IORequest) (resp *nodepb.IOResponse) {
	resp = &nodepb.IOResponse{Id: req.GetId()}
	defer func() {
		if r := recover(); r != nil {
			resp = &nodepb.IOResponse{Id: req.GetId(), Code: int32(codes.Internal), Message: "internal error in IO request"}
		}
	}()
	var err error
	switch op := req.GetOp().(type) {
	case *nodepb.IORequest_Write:
		_, err = s.Write(ctx, op.Write)
	case *nodepb.IORequest_Read:
		var r *nodepb.ReadResponse
		if r, err = s.Read(ctx, op.Read); err == nil {
			resp.Data = r.GetData()
		}
	default:
		err = invalid("IO request has no operation")
	}
	if err != nil {
		st := status.Convert(toStatus(err))
		resp.Code, resp.Message = int32(st.Code()), st.Message()
	}
	return resp
}
