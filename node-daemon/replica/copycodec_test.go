package replica

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
)

// TestCopyCodec: a verified write of a chunk is marshaled with its data in a buffer of its own,
// the caller's (not copied), and decodes with the plain proto encoding to the same request, which
// the marshaling leaves as it was; plain writes, small verified writes and other requests are
// marshaled whole (their data copied), and decode the same way.
func TestCopyCodec(t *testing.T) {
	codec, err := newCopyCodec()
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte{7, 1, 9}, 1<<20)
	ref := &nodepb.VolumeRef{StoreUuid: "s", VolumeId: "v"}
	for _, tc := range []struct {
		name    string
		req     *nodepb.ReplicaRequest
		aliased bool
	}{
		{"verified write of a chunk", &nodepb.ReplicaRequest{Id: 7, Ref: ref, Generation: 3, Incarnation: "i", Op: &nodepb.ReplicaRequest_Write{Write: &nodepb.ReplicaWrite{Offset: 1 << 30, Data: chunk, VerifyBlockSize: 65536}}}, true},
		{"verified write of an empty range", &nodepb.ReplicaRequest{Id: 8, Ref: ref, Generation: 3, Op: &nodepb.ReplicaRequest_Write{Write: &nodepb.ReplicaWrite{Offset: 4096, VerifyBlockSize: 4096}}}, false},
		{"small verified write", &nodepb.ReplicaRequest{Id: 9, Ref: ref, Generation: 3, Op: &nodepb.ReplicaRequest_Write{Write: &nodepb.ReplicaWrite{Offset: 4096, Data: chunk[:4096], VerifyBlockSize: 4096}}}, false},
		{"plain write", &nodepb.ReplicaRequest{Id: 10, Ref: ref, Generation: 3, Op: &nodepb.ReplicaRequest_Write{Write: &nodepb.ReplicaWrite{Data: chunk}}}, false},
		{"checksum", &nodepb.ReplicaRequest{Id: 11, Ref: ref, Generation: 3, Op: &nodepb.ReplicaRequest_Checksum{Checksum: &nodepb.ReplicaChecksum{Length: 4096, BlockSize: 4096}}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := proto.Clone(tc.req)
			out, err := codec.Marshal(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(tc.req, before) {
				t.Fatal("Marshal changed the request")
			}
			last := out[len(out)-1].ReadOnlyData()
			if data := tc.req.GetWrite().GetData(); len(data) > 0 {
				if got := len(last) == len(data) && &last[0] == &data[0]; got != tc.aliased {
					t.Fatalf("the data is sent from the caller's buffer: %v, want %v", got, tc.aliased)
				}
			}
			var got nodepb.ReplicaRequest
			if err := proto.Unmarshal(out.Materialize(), &got); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(&got, tc.req) {
				t.Fatalf("decoded %v, want %v", &got, tc.req)
			}
			var back nodepb.ReplicaRequest
			if err := codec.Unmarshal(out, &back); err != nil || !proto.Equal(&back, tc.req) {
				t.Fatalf("the codec's Unmarshal: %v", err)
			}
		})
	}
}
