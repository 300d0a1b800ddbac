package replica_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cobaltstore/cobalt/node-daemon/client"
	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
	"github.com/cobaltstore/cobalt/node-daemon/replica"
	"github.com/cobaltstore/cobalt/node-daemon/server/servertest"
)

// TestReplicateStream drives the ReplicaService over mTLS through Remote: pipelined requests,
// per-request status codes, and the fencing refusal with the recorded generation.
func TestReplicateStream(t *testing.T) {
	e := servertest.Start(t, 1<<30)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := client.Dial(e.Addr, e.ClientTLS(t, "coordinator"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.Volumes.CreateVolume(ctx, &nodepb.CreateVolumeRequest{Ref: &nodepb.VolumeRef{StoreUuid: servertest.StoreUUID, VolumeId: "v"}, SizeBytes: 8 << 20}); err != nil {
		t.Fatal(err)
	}
	open := func(id string) *replica.Remote {
		r, err := replica.OpenRemote(ctx, cl.Replicas, "remote", &nodepb.VolumeRef{StoreUuid: servertest.StoreUUID, VolumeId: id})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := r.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return r
	}
	r := open("v")
	// 64 writes in flight at once on one stream, then read back.
	errs := make(chan error, 64)
	for i := range 64 {
		go func() { errs <- r.Write(ctx, 2, int64(i)*4096, bytes.Repeat([]byte{byte(i)}, 4096)) }()
	}
	for range 64 {
		if err := <-errs; err != nil {
			t.Fatalf("pipelined write: %v", err)
		}
	}
	for i := range 64 {
		got, err := r.Read(ctx, 2, int64(i)*4096, 4096)
		if err != nil || !bytes.Equal(got, bytes.Repeat([]byte{byte(i)}, 4096)) {
			t.Fatalf("read back block %d: %v", i, err)
		}
	}
	// A copy's read (no_cache) reads the same bytes.
	if got, err := r.ReadNoCache(ctx, 2, 4096, 2*4096); err != nil || !bytes.Equal(got, append(bytes.Repeat([]byte{1}, 4096), bytes.Repeat([]byte{2}, 4096)...)) {
		t.Fatalf("no-cache read of blocks 1-2: %v", err)
	}
	if err := r.Trim(ctx, 2, 0, 4096); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx, 3); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"older generation", func() error { return r.Write(ctx, 2, 0, []byte{1}) }, codes.FailedPrecondition},
		{"generation 0", func() error { return r.Flush(ctx, 0) }, codes.InvalidArgument},
		{"outside the volume", func() error { return r.Write(ctx, 3, 8<<20, []byte{1}) }, codes.InvalidArgument},
		{"over the size limit", func() error { _, err := r.Read(ctx, 3, 0, nodepb.MaxIOSize+1); return err }, codes.InvalidArgument},
		{"missing volume", func() error { return open("missing").Flush(ctx, 3) }, codes.NotFound},
		{"checksum block size not a power of two", func() error { _, err := r.Checksum(ctx, 3, 0, 8192, 5000); return err }, codes.InvalidArgument},
		{"checksum outside the volume", func() error { _, err := r.Checksum(ctx, 3, 8<<20, 4096, 4096); return err }, codes.InvalidArgument},
		{"checksum of an older generation", func() error { _, err := r.Checksum(ctx, 2, 0, 4096, 4096); return err }, codes.FailedPrecondition},
		{"extents of an older generation", func() error { _, _, err := r.Extents(ctx, 2); return err }, codes.FailedPrecondition},
		{"extents of a missing volume", func() error { _, _, err := open("missing").Extents(ctx, 3); return err }, codes.NotFound},
		{"verified write with a block size not a power of two", func() error { _, err := r.WriteVerify(ctx, 3, 0, make([]byte, 8192), 5000); return err }, codes.InvalidArgument},
		{"verified write of an older generation", func() error { _, err := r.WriteVerify(ctx, 2, 0, make([]byte, 4096), 4096); return err }, codes.FailedPrecondition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var stale *replica.StaleError
			switch {
			case tt.want == codes.FailedPrecondition:
				if !errors.As(err, &stale) || stale.Recorded != 3 || stale.Requested != 2 {
					t.Fatalf("error = %v, want a StaleError of 2 against 3", err)
				}
			case status.Code(errors.Unwrap(err)) != tt.want:
				t.Fatalf("error = %v, want code %v", err, tt.want)
			}
		})
	}
	// Extents and checksums over the stream: blocks 1..63 were written, block 0 trimmed.
	ext, size, err := r.Extents(ctx, 3)
	if err != nil || size != 8<<20 || len(ext) != 1 || ext[0].Offset != 0 || ext[0].Length != 64*4096 {
		t.Fatalf("extents = %v, size %d, %v; want [{0 %d}], %d", ext, size, err, 64*4096, 8<<20)
	}
	sums, err := r.Checksum(ctx, 3, 0, 3*4096, 4096)
	if err != nil || len(sums) != 3 || sums[1] == sums[2] || sums[0] == sums[1] {
		t.Fatalf("checksums of blocks 0-2 = %x, %v: want three different ones", sums, err)
	}
	// A verified write is read back and compared on the node: equal, and then read as written.
	data := bytes.Repeat([]byte{9}, 3*4096)
	if v, err := r.WriteVerify(ctx, 3, 5*4096, data, 4096); err != nil || !v.Verified || len(v.Differ) != 0 {
		t.Fatalf("verified write = %+v, %v; want verified equal", v, err)
	}
	if got, err := r.ReadNoCache(ctx, 3, 5*4096, 3*4096); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read of the verified write: %v", err)
	}
	// The stream survives refused requests.
	if got, err := r.Read(ctx, 3, 0, 4096); err != nil || !bytes.Equal(got, make([]byte, 4096)) {
		t.Fatalf("read of the trimmed block after refusals: %v", err)
	}
}
