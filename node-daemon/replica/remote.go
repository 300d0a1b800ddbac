package replica

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
)

// Remote is a replica on another node, reached over one pipelined Replicate stream: many
// goroutines may call it at once, every request goes out as soon as it is sent and responses are
// matched by id. It is safe for concurrent use. Once the stream breaks every call fails with the
// stream's error; a Remote is not reconnected (the coordinator drops the replica, and a later
// resync opens a new one). The first answer binds it to the incarnation of the copy it reached
// (Incarnated): every later request is meant for that one only.
type Remote struct {
	name   string
	ref    *nodepb.VolumeRef
	bound  binding
	stream nodepb.ReplicaService_ReplicateClient
	cancel context.CancelFunc
	// sendMu serializes Send on the stream.
	sendMu sync.Mutex
	// done is closed when the receiver stops.
	done chan struct{}
	// mu guards the fields in this struct.
	mu struct {
		sync.Mutex
		next    uint64
		pending map[uint64]chan *nodepb.ReplicaResponse
		err     error // the stream's terminal error once it ended
	}
}

var (
	_ Syncer        = (*Remote)(nil)
	_ NoCacheReader = (*Remote)(nil)
	_ WriteVerifier = (*Remote)(nil)
	_ Incarnated    = (*Remote)(nil)
)

// OpenRemote opens a Replicate stream to the replica of volume ref on the node client talks to;
// name is how the coordinator and its recorder call the replica. The stream lives until Close or
// until ctx ends.
func OpenRemote(ctx context.Context, client nodepb.ReplicaServiceClient, name string, ref *nodepb.VolumeRef) (*Remote, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := client.Replicate(ctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("replica %s: open stream: %w", name, err)
	}
	r := &Remote{name: name, ref: ref, stream: stream, cancel: cancel, done: make(chan struct{})}
	r.mu.pending = make(map[uint64]chan *nodepb.ReplicaResponse)
	go r.receive()
	return r, nil
}

// Name implements Replica.
func (r *Remote) Name() string { return r.name }

// Incarnation implements Incarnated: "" until the first answer, or when the node is too old to
// say.
func (r *Remote) Incarnation() string { return r.bound.get() }

// receive delivers responses to their callers until the stream ends, then fails the callers
// still waiting with the stream's error.
func (r *Remote) receive() {
	defer close(r.done)
	for {
		resp, err := r.stream.Recv()
		r.mu.Lock()
		if err != nil {
			r.mu.err = fmt.Errorf("replica %s: stream ended: %w", r.name, err)
			for id, ch := range r.mu.pending {
				close(ch)
				delete(r.mu.pending, id)
			}
			r.mu.Unlock()
			return
		}
		ch, ok := r.mu.pending[resp.GetId()]
		delete(r.mu.pending, resp.GetId())
		r.mu.Unlock()
		if ok {
			ch <- resp
		}
	}
}

// do sends req and waits for its response; a refusal for an older generation comes back as a
// *StaleError.
func (r *Remote) do(ctx context.Context, req *nodepb.ReplicaRequest) (*nodepb.ReplicaResponse, error) {
	ch := make(chan *nodepb.ReplicaResponse, 1)
	r.mu.Lock()
	if r.mu.err != nil {
		err := r.mu.err
		r.mu.Unlock()
		return nil, err
	}
	r.mu.next++
	req.Id = r.mu.next
	req.Ref = r.ref
	req.Incarnation = r.bound.get()
	r.mu.pending[req.Id] = ch
	r.mu.Unlock()

	r.sendMu.Lock()
	err := r.stream.Send(req)
	r.sendMu.Unlock()
	if err != nil {
		r.forget(req.Id)
		return nil, r.streamErr(fmt.Errorf("replica %s: send: %w", r.name, err))
	}
	select {
	case resp, ok := <-ch:
		if !ok {
			return nil, r.streamErr(nil)
		}
		code := codes.Code(resp.GetCode())
		switch {
		case code == codes.OK:
			if err := r.bound.bind(resp.GetIncarnation()); err != nil {
				return nil, fmt.Errorf("replica %s: %w", r.name, err)
			}
			return resp, nil
		case code == codes.FailedPrecondition && req.GetIncarnation() != "" && resp.GetIncarnation() != "" && resp.GetIncarnation() != req.GetIncarnation():
			return nil, fmt.Errorf("replica %s: %w", r.name, &ReplacedError{Expected: req.GetIncarnation(), Found: resp.GetIncarnation()})
		case code == codes.FailedPrecondition && resp.GetReplicaGeneration() > req.GetGeneration():
			return nil, fmt.Errorf("replica %s: %w", r.name, &StaleError{Requested: req.GetGeneration(), Recorded: resp.GetReplicaGeneration()})
		default:
			return nil, fmt.Errorf("replica %s: %w", r.name, status.Error(code, resp.GetMessage()))
		}
	case <-ctx.Done():
		r.forget(req.Id)
		return nil, fmt.Errorf("replica %s: %w", r.name, ctx.Err())
	}
}

func (r *Remote) forget(id uint64) {
	r.mu.Lock()
	delete(r.mu.pending, id)
	r.mu.Unlock()
}

// streamErr returns the stream's terminal error (the receiver's, which carries the server's
// status), falling back to err.
func (r *Remote) streamErr(err error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.err != nil {
		return r.mu.err
	}
	if err == nil {
		err = fmt.Errorf("replica %s: stream closed", r.name)
	}
	return err
}

// Write implements Replica.
func (r *Remote) Write(ctx context.Context, gen uint64, off int64, data []byte) error {
	_, err := r.do(ctx, &nodepb.ReplicaRequest{Generation: gen, Op: &nodepb.ReplicaRequest_Write{Write: &nodepb.ReplicaWrite{Offset: off, Data: data}}})
	return err
}

// WriteVerify implements WriteVerifier. A node too old to compare answers the write without
// verified: Verified is then false.
func (r *Remote) WriteVerify(ctx context.Context, gen uint64, off int64, data []byte, blockSize int64) (Verified, error) {
	resp, err := r.do(ctx, &nodepb.ReplicaRequest{Generation: gen, Op: &nodepb.ReplicaRequest_Write{Write: &nodepb.ReplicaWrite{Offset: off, Data: data, VerifyBlockSize: blockSize}}})
	if err != nil {
		return Verified{}, err
	}
	if !resp.GetVerified() {
		why := resp.GetMessage()
		if why == "" {
			why = "the replica did not compare the write (a node too old to)"
		}
		return Verified{Why: why}, nil
	}
	idx, sums := resp.GetDifferingBlocks(), resp.GetChecksums()
	if len(idx) != len(sums) {
		return Verified{}, fmt.Errorf("replica %s: verified write at %d returned %d differing blocks and %d checksums", r.name, off, len(idx), len(sums))
	}
	blocks := (int64(len(data)) + blockSize - 1) / blockSize
	out := make([]DifferingBlock, len(idx))
	for i, b := range idx {
		if b < 0 || b >= blocks || (i > 0 && b <= idx[i-1]) {
			return Verified{}, fmt.Errorf("replica %s: verified write at %d returned differing block %d of %d out of order or range", r.name, off, b, blocks)
		}
		out[i] = DifferingBlock{Index: b, Checksum: sums[i]}
	}
	return Verified{Verified: true, Differ: out}, nil
}

// Trim implements Replica.
func (r *Remote) Trim(ctx context.Context, gen uint64, off, length int64) error {
	_, err := r.do(ctx, &nodepb.ReplicaRequest{Generation: gen, Op: &nodepb.ReplicaRequest_Trim{Trim: &nodepb.ReplicaTrim{Offset: off, Length: length}}})
	return err
}

// Flush implements Replica.
func (r *Remote) Flush(ctx context.Context, gen uint64) error {
	_, err := r.do(ctx, &nodepb.ReplicaRequest{Generation: gen, Op: &nodepb.ReplicaRequest_Flush{Flush: &nodepb.ReplicaFlush{}}})
	return err
}

// Read implements Replica.
func (r *Remote) Read(ctx context.Context, gen uint64, off, length int64) ([]byte, error) {
	return r.read(ctx, gen, &nodepb.ReplicaRead{Offset: off, Length: length})
}

// ReadNoCache implements NoCacheReader: Read past the remote node's data cache.
func (r *Remote) ReadNoCache(ctx context.Context, gen uint64, off, length int64) ([]byte, error) {
	return r.read(ctx, gen, &nodepb.ReplicaRead{Offset: off, Length: length, NoCache: true})
}

func (r *Remote) read(ctx context.Context, gen uint64, req *nodepb.ReplicaRead) ([]byte, error) {
	off, length := req.GetOffset(), req.GetLength()
	resp, err := r.do(ctx, &nodepb.ReplicaRequest{Generation: gen, Op: &nodepb.ReplicaRequest_Read{Read: req}})
	if err != nil {
		return nil, err
	}
	if int64(len(resp.GetData())) != length {
		return nil, fmt.Errorf("replica %s: read of %d bytes at %d returned %d", r.name, length, off, len(resp.GetData()))
	}
	return resp.GetData(), nil
}

// Close ends the stream after the requests in flight were answered and releases it.
func (r *Remote) Close() error {
	r.sendMu.Lock()
	err := r.stream.CloseSend()
	r.sendMu.Unlock()
	<-r.done
	r.cancel()
	r.mu.Lock()
	defer r.mu.Unlock()
	if st, ok := status.FromError(errors.Unwrap(r.mu.err)); ok && st.Code() != codes.OK && st.Code() != codes.Canceled {
		return errors.Join(err, r.mu.err)
	}
	return err
}

// Extents implements Syncer.
func (r *Remote) Extents(ctx context.Context, gen uint64) ([]Extent, int64, error) {
	resp, err := r.do(ctx, &nodepb.ReplicaRequest{Generation: gen, Op: &nodepb.ReplicaRequest_Extents{Extents: &nodepb.ReplicaExtents{}}})
	if err != nil {
		return nil, 0, err
	}
	out := make([]Extent, 0, len(resp.GetExtents()))
	for _, e := range resp.GetExtents() {
		out = append(out, Extent{Offset: e.GetOffset(), Length: e.GetLength()})
	}
	return out, resp.GetVolumeSize(), nil
}

// Checksum implements Syncer.
func (r *Remote) Checksum(ctx context.Context, gen uint64, off, length, blockSize int64) ([]uint32, error) {
	resp, err := r.do(ctx, &nodepb.ReplicaRequest{Generation: gen, Op: &nodepb.ReplicaRequest_Checksum{Checksum: &nodepb.ReplicaChecksum{Offset: off, Length: length, BlockSize: blockSize}}})
	if err != nil {
		return nil, err
	}
	if want := (length + blockSize - 1) / blockSize; int64(len(resp.GetChecksums())) != want {
		return nil, fmt.Errorf("replica %s: checksum of %d bytes at %d returned %d blocks, want %d", r.name, length, off, len(resp.GetChecksums()), want)
	}
	return resp.GetChecksums(), nil
}
