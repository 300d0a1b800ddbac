package replica

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/encoding"
	protoenc "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
)

// minFramedWrite is the smallest data a copyCodec sends without copying it: below it, one copy
// costs less than a second buffer.
const minFramedWrite = 64 << 10

// copyCodec is the codec of a Remote's Replicate stream: gRPC's own proto codec, except that
// the request of a verified write (a copy's chunk: ReplicaWrite.verify_block_size set) is sent
// without copying its data into the message's buffer. The request's other fields are marshaled
// on their own and the data follows as a buffer of its own, in the same wire format (the write
// and its data field come last in their messages, which protobuf allows), so the node decodes it
// with its own proto codec (the codec's name is the same: "proto").
//
// gRPC reads the data's buffer after Send returns, until it has written it to the connection:
// the caller must not change or reuse it until the write answered (a write that failed or timed
// out may still be being sent). Plain writes are copied as before, so a caller of Remote.Write
// can reuse its buffer as soon as Write returns.
type copyCodec struct {
	proto encoding.CodecV2
	// writeField and dataField are the numbers of ReplicaRequest.write and ReplicaWrite.data.
	writeField, dataField protowire.Number
}

// newCopyCodec returns a copyCodec over gRPC's proto codec.
func newCopyCodec() (copyCodec, error) {
	c := encoding.GetCodecV2(protoenc.Name)
	if c == nil {
		return copyCodec{}, fmt.Errorf("replica: gRPC's %s codec is not registered", protoenc.Name)
	}
	write := (&nodepb.ReplicaRequest{}).ProtoReflect().Descriptor().Fields().ByName("write")
	data := (&nodepb.ReplicaWrite{}).ProtoReflect().Descriptor().Fields().ByName("data")
	if write == nil || data == nil {
		return copyCodec{}, errors.New("replica: ReplicaRequest.write or ReplicaWrite.data is missing")
	}
	return copyCodec{proto: c, writeField: write.Number(), dataField: data.Number()}, nil
}

// Name implements encoding.CodecV2: the proto codec's, so the node decodes with its own.
func (c copyCodec) Name() string { return c.proto.Name() }

// Unmarshal implements encoding.CodecV2 with the proto codec.
func (c copyCodec) Unmarshal(data mem.BufferSlice, v any) error { return c.proto.Unmarshal(data, v) }

// Marshal implements encoding.CodecV2: a verified write's data in a buffer of its own (not
// copied), anything else with the proto codec.
func (c copyCodec) Marshal(v any) (mem.BufferSlice, error) {
	req, ok := v.(*nodepb.ReplicaRequest)
	w := req.GetWrite()
	if !ok || w.GetVerifyBlockSize() == 0 || len(w.GetData()) < minFramedWrite {
		return c.proto.Marshal(v)
	}
	// The request without its operation, and the write without its data, each marshaled alone
	// (the request is the sender's, who waits in Send meanwhile: it is put back as it was).
	op, data := req.Op, w.Data
	req.Op = nil
	head, err := proto.Marshal(req)
	req.Op = op
	if err != nil {
		return nil, fmt.Errorf("replica: marshal a write request: %w", err)
	}
	w.Data = nil
	inner, err := proto.Marshal(w)
	w.Data = data
	if err != nil {
		return nil, fmt.Errorf("replica: marshal a write request: %w", err)
	}
	// Field write = inner + the write's field data, whose bytes follow in their own buffer.
	dataHead := protowire.AppendVarint(protowire.AppendTag(nil, c.dataField, protowire.BytesType), uint64(len(data)))
	head = protowire.AppendTag(head, c.writeField, protowire.BytesType)
	head = protowire.AppendVarint(head, uint64(len(inner)+len(dataHead)+len(data)))
	head = append(append(head, inner...), dataHead...)
	return mem.BufferSlice{mem.SliceBuffer(head), mem.SliceBuffer(data)}, nil
}
