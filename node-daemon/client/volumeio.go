package client

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
)

// VolumeIO is a client of the daemon's multiplexed IO stream: many goroutines may call Read and
// Write at once over one stream, which costs far less per I/O than a unary call each. It is safe
// for concurrent use; Close ends the stream.
type VolumeIO struct {
	stream nodepb.VolumeService_IOClient
	cancel context.CancelFunc
	// sendMu serializes Send on the stream.
	sendMu sync.Mutex
	// done is closed when the receiver stops; err then says why.
	done chan struct{}
	// mu guards the fields in this struct.
	mu struct {
		sync.Mutex
		next    uint64
		pending map[uint64]chan *nodepb.IOResponse
		err     error
	}
}

// OpenIO opens an IO stream. The stream lives until Close or until ctx ends.
func (c *Client) OpenIO(ctx context.Context) (*VolumeIO, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := c.Volumes.IO(ctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("client: open IO stream: %w", err)
	}
	v := &VolumeIO{stream: stream, cancel: cancel, done: make(chan struct{})}
	v.mu.pending = make(map[uint64]chan *nodepb.IOResponse)
	go v.receive()
	return v, nil
}

// receive delivers responses to their callers until the stream ends, then fails the callers
// still waiting with the stream's error.
func (v *VolumeIO) receive() {
	defer close(v.done)
	for {
		resp, err := v.stream.Recv()
		v.mu.Lock()
		if err != nil {
			v.mu.err = err
			for id, ch := range v.mu.pending {
				close(ch)
				delete(v.mu.pending, id)
			}
			v.mu.Unlock()
			return
		}
		ch, ok := v.mu.pending[resp.GetId()]
		delete(v.mu.pending, resp.GetId())
		v.mu.Unlock()
		if ok {
			ch <- resp
		}
	}
}

// do sends req and waits for its response.
func (v *VolumeIO) do(ctx context.Context, req *nodepb.IORequest) (*nodepb.IOResponse, error) {
	ch := make(chan *nodepb.IOResponse, 1)
	v.mu.Lock()
	if v.mu.err != nil {
		err := v.mu.err
		v.mu.Unlock()
		return nil, err
	}
	v.mu.next++
	req.Id = v.mu.next
	v.mu.pending[req.Id] = ch
	v.mu.Unlock()

	v.sendMu.Lock()
	err := v.stream.Send(req)
	v.sendMu.Unlock()
	if err != nil {
		v.forget(req.Id)
		return nil, v.streamErr(err)
	}
	select {
	case resp, ok := <-ch:
		if !ok {
			return nil, v.streamErr(nil)
		}
		if resp.GetCode() != int32(codes.OK) {
			return nil, status.Error(codes.Code(resp.GetCode()), resp.GetMessage())
		}
		return resp, nil
	case <-ctx.Done():
		v.forget(req.Id)
		return nil, ctx.Err()
	}
}

func (v *VolumeIO) forget(id uint64) {
	v.mu.Lock()
	delete(v.mu.pending, id)
	v.mu.Unlock()
}

// streamErr returns the stream's terminal error (the receiver's, which carries the server's
// status), falling back to err.
func (v *VolumeIO) streamErr(err error) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.mu.err != nil {
		return v.mu.err
	}
	if err == nil {
		err = errors.New("IO stream closed")
	}
	return err
}

// Write writes data at offset of volume ref; durable when it returns nil.
func (v *VolumeIO) Write(ctx context.Context, ref *nodepb.VolumeRef, offset int64, data []byte) error {
	_, err := v.do(ctx, &nodepb.IORequest{Op: &nodepb.IORequest_Write{Write: &nodepb.WriteRequest{Ref: ref, Offset: offset, Data: data}}})
	return err
}

// Read reads length bytes at offset of volume ref.
func (v *VolumeIO) Read(ctx context.Context, ref *nodepb.VolumeRef, offset, length int64) ([]byte, error) {
	resp, err := v.do(ctx, &nodepb.IORequest{Op: &nodepb.IORequest_Read{Read: &nodepb.ReadRequest{Ref: ref, Offset: offset, Length: length}}})
	if err != nil {
		return nil, err
	}
	return resp.GetData(), nil
}

// Close ends the stream after the requests in flight were answered (the server finishes them
// before it closes its side) and releases it.
func (v *VolumeIO) Close() error {
	v.sendMu.Lock()
	err := v.stream.CloseSend()
	v.sendMu.Unlock()
	<-v.done
	v.cancel()
	v.mu.Lock()
	defer v.mu.Unlock()
	if st, ok := status.FromError(v.mu.err); ok && st.Code() != codes.OK && st.Code() != codes.Canceled {
		return errors.Join(err, v.mu.err)
	}
	return err
}
