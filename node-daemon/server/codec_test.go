package server

import (
	"bytes"
	"fmt"
	"testing"
	"unsafe"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
)

// frames cuts msg into pieces of at most size bytes, as a message arrives in HTTP/2 frames.
func frames(msg []byte, size int) mem.BufferSlice {
	var out mem.BufferSlice
	for len(msg) > 0 {
		n := min(size, len(msg))
		out = append(out, mem.SliceBuffer(bytes.Clone(msg[:n])))
		msg = msg[n:]
	}
	return out
}

func replicaWrite(n int, seed byte) *nodepb.ReplicaRequest {
	data := make([]byte, n)
	for i := range data {
		data[i] = seed + byte(i*7) + byte(i>>12)
	}
	return &nodepb.ReplicaRequest{
		Id:          42,
		Ref:         &nodepb.VolumeRef{StoreUuid: "0b7e7a0e-6c1f-4a43-9d59-2d6c1c8d8f10", VolumeId: "pvc-5f1f4f6e-3c3a-4d0c-a7a9-2b7d0c9e1f00"},
		Generation:  7,
		Incarnation: "inc-1",
		Op:          &nodepb.ReplicaRequest_Write{Write: &nodepb.ReplicaWrite{Offset: 1 << 30, Data: data, VerifyBlockSize: 64 << 10}},
	}
}

func mustMarshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRequestCodecFieldNumbers: the field numbers the codec places are those of the generated
// messages.
func TestRequestCodecFieldNumbers(t *testing.T) {
	for _, f := range []struct {
		msg  proto.Message
		name protoreflect.Name
		want protowire.Number
	}{
		{&nodepb.ReplicaRequest{}, "write", replicaRequestWrite},
		{&nodepb.ReplicaWrite{}, "data", replicaWriteData},
	} {
		fd := f.msg.ProtoReflect().Descriptor().Fields().ByName(f.name)
		if fd == nil || fd.Number() != f.want || fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.BytesKind {
			t.Fatalf("%T.%s: descriptor %v, the codec places field %d", f.msg, f.name, fd, f.want)
		}
	}
}

// TestRequestCodec: the codec decodes what protobuf decodes, whatever frames the message came in;
// a large write's data lands aligned for direct I/O and refers into the one buffer the message
// was gathered in, and the shapes where the parts around the data would not merge into the whole
// (another op after the write, a second data field) are decoded whole, as protobuf does.
func TestRequestCodec(t *testing.T) {
	big := mustMarshal(t, replicaWrite(1<<20, 1))
	flush := protowire.AppendTag(nil, 6, protowire.BytesType) // ReplicaRequest.flush, empty
	flush = protowire.AppendBytes(flush, nil)
	// A second write field holding only a data field: protobuf merges it into the first write and
	// the last data wins.
	inner := protowire.AppendBytes(protowire.AppendTag(nil, replicaWriteData, protowire.BytesType), []byte("last"))
	second := protowire.AppendBytes(protowire.AppendTag(nil, replicaRequestWrite, protowire.BytesType), inner)
	// One write holding two data fields: the last wins.
	twice := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 4096)
	twice = protowire.AppendBytes(protowire.AppendTag(twice, replicaWriteData, protowire.BytesType), make([]byte, 1<<20))
	twice = append(twice, inner...)
	twoData := protowire.AppendBytes(protowire.AppendTag(nil, replicaRequestWrite, protowire.BytesType), twice)
	for _, tc := range []struct {
		name    string
		msg     []byte
		aligned bool // Unmarshal decodes the data aligned (a large write)
		refers  bool // decodeReplicaWrite leaves the data in the message (no odd shape)
	}{
		{"1 MiB write", big, true, true},
		{"odd-sized write", mustMarshal(t, replicaWrite(64<<10+1000, 2)), true, true},
		{"small write", mustMarshal(t, replicaWrite(4096, 3)), false, true},
		{"not a write", mustMarshal(t, &nodepb.ReplicaRequest{Id: 1, Op: &nodepb.ReplicaRequest_Read{Read: &nodepb.ReplicaRead{Offset: 4096, Length: 1 << 20}}}), false, false},
		{"another op after the write", append(bytes.Clone(big), flush...), false, false},
		{"a second write after the write", append(bytes.Clone(big), second...), false, false},
		{"a second data field in the write", twoData, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := &nodepb.ReplicaRequest{}
			if err := proto.Unmarshal(tc.msg, want); err != nil {
				t.Fatalf("proto.Unmarshal: %v", err)
			}
			c := newRequestCodec()
			for _, size := range []int{16 << 10, 1000, len(tc.msg)} {
				got := &nodepb.ReplicaRequest{}
				if err := c.Unmarshal(frames(tc.msg, size), got); err != nil {
					t.Fatalf("frames of %d: Unmarshal: %v", size, err)
				}
				if !proto.Equal(got, want) {
					t.Fatalf("frames of %d: decoded %v, want %v", size, got, want)
				}
				if d := got.GetWrite().GetData(); tc.aligned && !blockdev.IsAligned(d, blockdev.Alignment) {
					t.Fatalf("frames of %d: the write's data is not aligned", size)
				}
			}
			at, ok := findWriteData(tc.msg[:min(len(tc.msg), headProbe)], len(tc.msg))
			if !ok {
				if tc.refers {
					t.Fatal("findWriteData found no write data")
				}
				return
			}
			got := &nodepb.ReplicaRequest{}
			if err := decodeReplicaWrite(tc.msg, at, got); err != nil {
				t.Fatal(err)
			}
			d := got.GetWrite().GetData()
			if refers := len(d) > 0 && unsafe.SliceData(d) == &tc.msg[at.data.value]; refers != tc.refers {
				t.Fatalf("the data refers into the message: %v, want %v", refers, tc.refers)
			}
		})
	}
}

// FuzzRequestCodec: for any bytes, cut into two frames anywhere, the codec decodes what protobuf
// decodes (both fail, or both give equal messages). The smallest aligned message is lowered to
// nothing so that every input goes through the aligned decoding.
func FuzzRequestCodec(f *testing.F) {
	f.Add(mustMarshal(f, replicaWrite(100, 1)), uint16(7))
	f.Add(mustMarshal(f, replicaWrite(0, 1)), uint16(0))
	f.Add(mustMarshal(f, &nodepb.ReplicaRequest{Id: 3, Op: &nodepb.ReplicaRequest_Flush{Flush: &nodepb.ReplicaFlush{}}}), uint16(2))
	w := mustMarshal(f, replicaWrite(300, 2))
	f.Add(append(bytes.Clone(w), w...), uint16(40))
	f.Add(w[:len(w)-10], uint16(50))
	c := newRequestCodec()
	c.minAligned = 0
	f.Fuzz(func(t *testing.T, msg []byte, cut uint16) {
		k := min(int(cut), len(msg))
		data := mem.BufferSlice{mem.SliceBuffer(bytes.Clone(msg[:k])), mem.SliceBuffer(bytes.Clone(msg[k:]))}
		got, want := &nodepb.ReplicaRequest{}, &nodepb.ReplicaRequest{}
		gotErr, wantErr := c.Unmarshal(data, got), proto.Unmarshal(msg, want)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("Unmarshal error %v, protobuf's %v", gotErr, wantErr)
		}
		if wantErr == nil && !proto.Equal(got, want) {
			t.Fatalf("decoded %v, protobuf decodes %v", got, want)
		}
	})
}

// BenchmarkRequestCodec decodes a replica write of 1 MiB (a Pod's large write) and of 4 MiB (a
// rebuild's chunk) that arrived in 16 KiB frames, with the protobuf codec and with requestCodec.
func BenchmarkRequestCodec(b *testing.B) {
	for _, size := range []int{1 << 20, 4 << 20} {
		msg := mustMarshal(b, replicaWrite(size, 1))
		in := frames(msg, 16<<10)
		for _, c := range []struct {
			name  string
			codec interface {
				Unmarshal(mem.BufferSlice, any) error
			}
		}{
			{"protobuf", newRequestCodec().proto},
			{"aligned", newRequestCodec()},
		} {
			b.Run(fmt.Sprintf("%dMiB/%s", size>>20, c.name), func(b *testing.B) {
				b.SetBytes(int64(len(msg)))
				for b.Loop() {
					if err := c.codec.Unmarshal(in, &nodepb.ReplicaRequest{}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
