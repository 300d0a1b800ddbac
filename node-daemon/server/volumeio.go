package server

import (
	"context"
	"errors"
	"io"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
)

// maxIOInFlight bounds the requests of one IO stream that run at once; the stream stops reading
// requests while that many are running.
const maxIOInFlight = 64

// IO implements the multiplexed I/O stream: every request runs in its own goroutine (at most
// maxIOInFlight at once) through the same code as the unary Write and Read, and its response is
// sent when it completes. The handler returns only after every started request has answered.
func (s *volumeService) IO(stream nodepb.VolumeService_IOServer) error {
	ctx := stream.Context()
	var (
		sendMu sync.Mutex
		wg     sync.WaitGroup
		sem    = make(chan struct{}, maxIOInFlight)
	)
	defer wg.Wait()
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			resp := s.ioOne(ctx, req)
			sendMu.Lock()
			defer sendMu.Unlock()
			// A failed send means the stream is gone; Recv reports that to the loop.
			_ = stream.Send(resp)
		}()
	}
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
