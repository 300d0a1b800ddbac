package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/cobaltstore/cobalt/node-daemon/client"
	"github.com/cobaltstore/cobalt/node-daemon/pki"
	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
	"github.com/cobaltstore/cobalt/node-daemon/server"
	"github.com/cobaltstore/cobalt/node-daemon/server/servertest"
	"github.com/cobaltstore/cobalt/node-daemon/volume"
)

const storeUUID = servertest.StoreUUID

type env struct {
	*servertest.Env
	ca     *pki.CA
	addr   string
	srv    *server.Server
	client *client.Client
}

// start serves one in-memory store of the given capacity over mTLS on loopback, not yet healthy.
func start(t *testing.T, capacity int64) *env {
	t.Helper()
	se := servertest.Start(t, capacity)
	e := &env{Env: se, ca: se.CA, addr: se.Addr, srv: se.Server}
	e.client = e.dial(t, "cobalt-operator")
	return e
}

func (e *env) dial(t *testing.T, name string) *client.Client {
	t.Helper()
	c, err := client.Dial(e.addr, e.ClientTLS(t, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func ref(id string) *nodepb.VolumeRef { return &nodepb.VolumeRef{StoreUuid: storeUUID, VolumeId: id} }

func TestVolumeLifecycleOverGRPC(t *testing.T) {
	e := start(t, 1<<30)
	ctx := ctxT(t)
	v := e.client.Volumes
	created, err := v.CreateVolume(ctx, &nodepb.CreateVolumeRequest{Ref: ref("pvc-1"), SizeBytes: 64 << 20, StripeSizeBytes: 1 << 20})
	if err != nil {
		t.Fatalf("CreateVolume: %v", err)
	}
	if created.GetVolume().GetSizeBytes() != 64<<20 || created.GetVolume().GetAllocatedBytes() != 0 {
		t.Fatalf("created = %v", created)
	}
	// A unary write across a stripe boundary reads back.
	data := bytes.Repeat([]byte("cobalt!"), 300000) // 2.1 MB
	if _, err := v.Write(ctx, &nodepb.WriteRequest{Ref: ref("pvc-1"), Offset: 1<<20 - 100, Data: data}); err != nil {
		t.Fatalf("Write: %v", err)
	}
	got, err := v.Read(ctx, &nodepb.ReadRequest{Ref: ref("pvc-1"), Offset: 1<<20 - 100, Length: int64(len(data))})
	if err != nil || !bytes.Equal(got.GetData(), data) {
		t.Fatalf("Read back differs (err %v)", err)
	}
	// Streams: 5 MiB + 17 bytes of random data in and out, compared by checksum.
	payload := make([]byte, 5<<20+17)
	rand.Read(payload)
	n, err := e.client.WriteFrom(ctx, ref("pvc-1"), 10<<20, bytes.NewReader(payload))
	if err != nil || n != int64(len(payload)) {
		t.Fatalf("WriteFrom = %d, %v", n, err)
	}
	var out bytes.Buffer
	if _, err := e.client.ReadTo(ctx, ref("pvc-1"), 10<<20, int64(len(payload)), &out); err != nil {
		t.Fatalf("ReadTo: %v", err)
	}
	if sha256.Sum256(out.Bytes()) != sha256.Sum256(payload) {
		t.Fatal("streamed data differs")
	}
	// Trim the streamed range: it reads as zeros and frees its whole stripes.
	before, _ := v.GetVolume(ctx, &nodepb.GetVolumeRequest{Ref: ref("pvc-1")})
	if _, err := v.Trim(ctx, &nodepb.TrimRequest{Ref: ref("pvc-1"), Offset: 10 << 20, Length: int64(len(payload))}); err != nil {
		t.Fatalf("Trim: %v", err)
	}
	after, _ := v.GetVolume(ctx, &nodepb.GetVolumeRequest{Ref: ref("pvc-1")})
	if freed := before.GetVolume().GetAllocatedBytes() - after.GetVolume().GetAllocatedBytes(); freed < 5<<20 {
		t.Fatalf("trim freed %d bytes, want at least 5 MiB", freed)
	}
	zeros, err := v.Read(ctx, &nodepb.ReadRequest{Ref: ref("pvc-1"), Offset: 10 << 20, Length: 4096})
	if err != nil || !bytes.Equal(zeros.GetData(), make([]byte, 4096)) {
		t.Fatalf("trimmed range does not read as zeros (err %v)", err)
	}
	if _, err := v.Flush(ctx, &nodepb.FlushRequest{Ref: ref("pvc-1")}); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	resized, err := v.ResizeVolume(ctx, &nodepb.ResizeVolumeRequest{Ref: ref("pvc-1"), SizeBytes: 128 << 20})
	if err != nil || resized.GetVolume().GetSizeBytes() != 128<<20 {
		t.Fatalf("ResizeVolume = %v, %v", resized, err)
	}
	list, err := v.ListVolumes(ctx, &nodepb.ListVolumesRequest{StoreUuid: storeUUID})
	if err != nil || len(list.GetVolumes()) != 1 {
		t.Fatalf("ListVolumes = %v, %v", list, err)
	}
	stores, err := e.client.Stores.ListStores(ctx, &nodepb.ListStoresRequest{})
	if err != nil || len(stores.GetStores()) != 1 || stores.GetStores()[0].GetVolumes() != 1 || stores.GetStores()[0].GetUsedBytes() == 0 {
		t.Fatalf("ListStores = %v, %v", stores, err)
	}
	if _, err := v.DeleteVolume(ctx, &nodepb.DeleteVolumeRequest{Ref: ref("pvc-1")}); err != nil {
		t.Fatalf("DeleteVolume: %v", err)
	}
	if _, err := v.DeleteVolume(ctx, &nodepb.DeleteVolumeRequest{Ref: ref("pvc-1")}); err != nil {
		t.Fatalf("repeated DeleteVolume: %v", err)
	}
	if _, err := v.GetVolume(ctx, &nodepb.GetVolumeRequest{Ref: ref("pvc-1")}); status.Code(err) != codes.NotFound {
		t.Fatalf("GetVolume after delete = %v, want NotFound", err)
	}
}

func TestBadRequestsGetCleanErrors(t *testing.T) {
	e := start(t, 64<<20)
	ctx := ctxT(t)
	v, o := e.client.Volumes, e.client.Objects
	if _, err := v.CreateVolume(ctx, &nodepb.CreateVolumeRequest{Ref: ref("v"), SizeBytes: 8 << 20}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.CreateVolume(ctx, &nodepb.CreateVolumeRequest{Ref: ref("w"), SizeBytes: 64 << 20}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Write(ctx, &nodepb.WriteRequest{Ref: ref("w"), Data: make([]byte, nodepb.MaxIOSize+4096)}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("oversized write = %v", err) // over MaxIOSize
	}
	for off := int64(0); off < 64<<20; off += 8 << 20 {
		if _, err := v.Write(ctx, &nodepb.WriteRequest{Ref: ref("w"), Offset: off, Data: make([]byte, 8<<20)}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"volume: no ref", func() error { _, err := v.GetVolume(ctx, &nodepb.GetVolumeRequest{}); return err }, codes.InvalidArgument},
		{"volume: bad id", func() error { _, err := v.GetVolume(ctx, &nodepb.GetVolumeRequest{Ref: ref("../etc")}); return err }, codes.InvalidArgument},
		{"volume: empty store", func() error {
			_, err := v.GetVolume(ctx, &nodepb.GetVolumeRequest{Ref: &nodepb.VolumeRef{VolumeId: "v"}})
			return err
		}, codes.InvalidArgument},
		{"volume: unknown store", func() error {
			_, err := v.GetVolume(ctx, &nodepb.GetVolumeRequest{Ref: &nodepb.VolumeRef{StoreUuid: "nope", VolumeId: "v"}})
			return err
		}, codes.NotFound},
		{"volume: unknown volume", func() error { _, err := v.Read(ctx, &nodepb.ReadRequest{Ref: ref("x"), Length: 1}); return err }, codes.NotFound},
		{"volume: zero size", func() error {
			_, err := v.CreateVolume(ctx, &nodepb.CreateVolumeRequest{Ref: ref("z"), SizeBytes: 0})
			return err
		}, codes.InvalidArgument},
		{"volume: larger than the store", func() error {
			_, err := v.CreateVolume(ctx, &nodepb.CreateVolumeRequest{Ref: ref("z"), SizeBytes: 1 << 40})
			return err
		}, codes.ResourceExhausted},
		{"volume: conflicting create", func() error {
			_, err := v.CreateVolume(ctx, &nodepb.CreateVolumeRequest{Ref: ref("v"), SizeBytes: 16 << 20})
			return err
		}, codes.AlreadyExists},
		{"volume: shrink", func() error {
			_, err := v.ResizeVolume(ctx, &nodepb.ResizeVolumeRequest{Ref: ref("v"), SizeBytes: 4 << 20})
			return err
		}, codes.FailedPrecondition},
		{"volume: negative offset", func() error {
			_, err := v.Write(ctx, &nodepb.WriteRequest{Ref: ref("v"), Offset: -1, Data: []byte{1}})
			return err
		}, codes.InvalidArgument},
		{"volume: read past the end", func() error {
			_, err := v.Read(ctx, &nodepb.ReadRequest{Ref: ref("v"), Offset: 8 << 20, Length: 1})
			return err
		}, codes.InvalidArgument},
		{"volume: read over the limit", func() error {
			_, err := v.Read(ctx, &nodepb.ReadRequest{Ref: ref("w"), Length: 32 << 20})
			return err
		}, codes.InvalidArgument},
		{"volume: store full", func() error {
			_, err := v.Write(ctx, &nodepb.WriteRequest{Ref: ref("v"), Data: make([]byte, 8<<20)})
			return err
		}, codes.ResourceExhausted},
		{"volume: read stream past the end", func() error {
			s, err := v.ReadStream(ctx, &nodepb.ReadRequest{Ref: ref("v"), Offset: 0, Length: 9 << 20})
			if err != nil {
				return err
			}
			_, err = s.Recv()
			return err
		}, codes.InvalidArgument},
		{"object: empty transaction", func() error {
			_, err := o.Commit(ctx, &nodepb.CommitRequest{StoreUuid: storeUUID})
			return err
		}, codes.InvalidArgument},
		{"object: empty op", func() error {
			_, err := o.Commit(ctx, &nodepb.CommitRequest{StoreUuid: storeUUID, Ops: []*nodepb.Op{{}}})
			return err
		}, codes.InvalidArgument},
		{"object: write without ref", func() error {
			_, err := o.Commit(ctx, &nodepb.CommitRequest{StoreUuid: storeUUID, Ops: []*nodepb.Op{{Op: &nodepb.Op_Write{Write: &nodepb.WriteOp{}}}}})
			return err
		}, codes.InvalidArgument},
		{"object: negative zero length", func() error {
			_, err := o.Commit(ctx, &nodepb.CommitRequest{StoreUuid: storeUUID, Ops: []*nodepb.Op{{Op: &nodepb.Op_Zero{Zero: &nodepb.ZeroOp{
				Ref: &nodepb.ObjectRef{Collection: "c", Object: "o"}, Length: -5}}}}})
			return err
		}, codes.InvalidArgument},
		{"object: create existing collection", func() error {
			_, err := o.Commit(ctx, &nodepb.CommitRequest{StoreUuid: storeUUID, Ops: []*nodepb.Op{{Op: &nodepb.Op_CreateCollection{
				CreateCollection: &nodepb.CreateCollectionOp{Collection: volume.CollectionName("v")}}}}})
			return err
		}, codes.AlreadyExists},
		{"object: remove non-empty collection", func() error {
			_, err := o.Commit(ctx, &nodepb.CommitRequest{StoreUuid: storeUUID, Ops: []*nodepb.Op{{Op: &nodepb.Op_RemoveCollection{
				RemoveCollection: &nodepb.RemoveCollectionOp{Collection: volume.CollectionName("w")}}}}})
			return err
		}, codes.FailedPrecondition},
		{"object: read missing object", func() error {
			_, err := o.Read(ctx, &nodepb.ReadObjectRequest{StoreUuid: storeUUID, Ref: &nodepb.ObjectRef{Collection: "nope", Object: "x"}, Length: 1})
			return err
		}, codes.NotFound},
		{"object: read without ref", func() error {
			_, err := o.Read(ctx, &nodepb.ReadObjectRequest{StoreUuid: storeUUID, Length: 1})
			return err
		}, codes.InvalidArgument},
		{"object: list limit too large", func() error {
			_, err := o.ListObjects(ctx, &nodepb.ListObjectsRequest{StoreUuid: storeUUID, Collection: "c", Limit: 1 << 20})
			return err
		}, codes.InvalidArgument},
		{"object: getattr without name", func() error {
			_, err := o.GetAttr(ctx, &nodepb.GetAttrRequest{StoreUuid: storeUUID, Ref: &nodepb.ObjectRef{Collection: "c", Object: "o"}})
			return err
		}, codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			st, _ := status.FromError(err)
			if st.Code() != tt.want {
				t.Fatalf("code = %v (%v), want %v", st.Code(), err, tt.want)
			}
			if st.Message() == "" {
				t.Fatal("error has no message")
			}
		})
	}
}

func TestObjectAPI(t *testing.T) {
	e := start(t, 1<<30)
	ctx := ctxT(t)
	o := e.client.Objects
	r := func(obj string) *nodepb.ObjectRef { return &nodepb.ObjectRef{Collection: "c", Object: obj} }
	ops := []*nodepb.Op{
		{Op: &nodepb.Op_CreateCollection{CreateCollection: &nodepb.CreateCollectionOp{Collection: "c"}}},
		{Op: &nodepb.Op_Write{Write: &nodepb.WriteOp{Ref: r("a"), Offset: 0, Data: []byte("hello world")}}},
		{Op: &nodepb.Op_Zero{Zero: &nodepb.ZeroOp{Ref: r("a"), Offset: 5, Length: 1}}},
		{Op: &nodepb.Op_SetAttr{SetAttr: &nodepb.SetAttrOp{Ref: r("a"), Name: "x", Value: []byte("1")}}},
		{Op: &nodepb.Op_SetAttr{SetAttr: &nodepb.SetAttrOp{Ref: r("a"), Name: "y", Value: []byte("2")}}},
		{Op: &nodepb.Op_RmAttr{RmAttr: &nodepb.RmAttrOp{Ref: r("a"), Name: "y"}}},
		{Op: &nodepb.Op_OmapSetHeader{OmapSetHeader: &nodepb.OmapSetHeaderOp{Ref: r("a"), Header: []byte("hdr")}}},
		{Op: &nodepb.Op_Clone{Clone: &nodepb.CloneOp{Source: r("a"), Dest: "b"}}},
		{Op: &nodepb.Op_Truncate{Truncate: &nodepb.TruncateOp{Ref: r("b"), Size: 5}}},
		{Op: &nodepb.Op_Touch{Touch: &nodepb.TouchOp{Ref: r("t")}}},
		{Op: &nodepb.Op_Rename{Rename: &nodepb.RenameOp{Source: r("t"), Dest: "u"}}},
	}
	entries := map[string][]byte{}
	for i := range 600 {
		entries[string(rune('a'+i%26))+string(rune('a'+i/26))] = []byte{byte(i)}
	}
	ops = append(ops, &nodepb.Op{Op: &nodepb.Op_OmapSetKeys{OmapSetKeys: &nodepb.OmapSetKeysOp{Ref: r("a"), Entries: entries}}},
		&nodepb.Op{Op: &nodepb.Op_OmapRmKeys{OmapRmKeys: &nodepb.OmapRmKeysOp{Ref: r("a"), Keys: []string{"aa"}}}})
	if _, err := o.Commit(ctx, &nodepb.CommitRequest{StoreUuid: storeUUID, Ops: ops}); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	got, err := o.Read(ctx, &nodepb.ReadObjectRequest{StoreUuid: storeUUID, Ref: r("a"), Offset: 0, Length: 100})
	if err != nil || string(got.GetData()) != "hello\x00world" {
		t.Fatalf("Read = %q, %v", got.GetData(), err)
	}
	if st, err := o.Stat(ctx, &nodepb.StatRequest{StoreUuid: storeUUID, Ref: r("b")}); err != nil || st.GetSize() != 5 {
		t.Fatalf("Stat(b) = %v, %v", st, err)
	}
	if a, err := o.GetAttr(ctx, &nodepb.GetAttrRequest{StoreUuid: storeUUID, Ref: r("b"), Name: "x"}); err != nil || string(a.GetValue()) != "1" {
		t.Fatalf("GetAttr(b, x) = %v, %v", a, err)
	}
	if as, err := o.GetAttrs(ctx, &nodepb.GetAttrsRequest{StoreUuid: storeUUID, Ref: r("a")}); err != nil || len(as.GetAttrs()) != 1 {
		t.Fatalf("GetAttrs(a) = %v, %v", as, err)
	}
	if h, err := o.OmapGetHeader(ctx, &nodepb.OmapGetHeaderRequest{StoreUuid: storeUUID, Ref: r("a")}); err != nil || string(h.GetHeader()) != "hdr" {
		t.Fatalf("OmapGetHeader = %v, %v", h, err)
	}
	if g, err := o.OmapGet(ctx, &nodepb.OmapGetRequest{StoreUuid: storeUUID, Ref: r("a"), Keys: []string{"aa", "ba", "zz"}}); err != nil || len(g.GetEntries()) != 1 {
		t.Fatalf("OmapGet = %v, %v", g, err)
	}
	// Iterate everything (599 entries in several batches) and then a limited page.
	count := func(startAfter string, limit int64) (n int, last string) {
		s, err := o.OmapIterate(ctx, &nodepb.OmapIterateRequest{StoreUuid: storeUUID, Ref: r("a"), StartAfter: startAfter, Limit: limit})
		if err != nil {
			t.Fatal(err)
		}
		for {
			resp, err := s.Recv()
			if errors.Is(err, io.EOF) {
				return n, last
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range resp.GetEntries() {
				if e.GetKey() <= last {
					t.Fatalf("omap keys out of order: %q after %q", e.GetKey(), last)
				}
				last = e.GetKey()
				n++
			}
		}
	}
	if n, _ := count("", 0); n != 599 {
		t.Fatalf("OmapIterate returned %d entries, want 599", n)
	}
	if n, _ := count("m", 10); n != 10 {
		t.Fatalf("limited OmapIterate returned %d entries, want 10", n)
	}
	colls, err := o.ListCollections(ctx, &nodepb.ListCollectionsRequest{StoreUuid: storeUUID})
	if err != nil || len(colls.GetCollections()) != 1 {
		t.Fatalf("ListCollections = %v, %v", colls, err)
	}
	page, err := o.ListObjects(ctx, &nodepb.ListObjectsRequest{StoreUuid: storeUUID, Collection: "c", Limit: 2})
	if err != nil || len(page.GetObjects()) != 2 || page.GetNext() != "u" {
		t.Fatalf("ListObjects page 1 = %v, %v", page, err)
	}
	page, err = o.ListObjects(ctx, &nodepb.ListObjectsRequest{StoreUuid: storeUUID, Collection: "c", Start: page.GetNext()})
	if err != nil || len(page.GetObjects()) != 1 || page.GetNext() != "" {
		t.Fatalf("ListObjects page 2 = %v, %v", page, err)
	}
}

func TestClientWithoutValidCertificateIsRefused(t *testing.T) {
	e := start(t, 1<<30)
	ctx := ctxT(t)
	foreign, err := pki.NewCA("foreign", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	foreignCert, _ := foreign.IssueClient("cobalt-operator", time.Now(), time.Hour)
	foreignTLS, _ := pki.ClientTLSConfig(foreignCert, e.ca.Pool(), "")
	servingCert, _ := e.ca.IssueServing(pki.ServingRequest{CommonName: "evil", DNSNames: []string{"evil"}, Now: time.Now(), Validity: time.Hour})
	servingTLS, _ := pki.ClientTLSConfig(servingCert, e.ca.Pool(), "")
	noCert := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: e.ca.Pool(), GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return &tls.Certificate{}, nil // present no certificate
	}}
	for name, cfg := range map[string]*tls.Config{"no certificate": noCert, "foreign CA": foreignTLS, "serving certificate": servingTLS} {
		t.Run(name, func(t *testing.T) {
			c, err := client.Dial(e.addr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, err = c.Stores.ListStores(ctx, &nodepb.ListStoresRequest{})
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("ListStores without a valid certificate = %v, want Unavailable (handshake refused)", err)
			}
		})
	}
	if _, err := client.Dial(e.addr, &tls.Config{RootCAs: e.ca.Pool()}); err == nil {
		t.Fatal("client.Dial accepted a TLS configuration without a certificate")
	}
	if _, err := e.client.Stores.ListStores(ctx, &nodepb.ListStoresRequest{}); err != nil {
		t.Fatalf("valid client refused: %v", err)
	}
}

func TestHealth(t *testing.T) {
	e := start(t, 1<<30)
	ctx := ctxT(t)
	resp, err := e.client.Health.Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health before ready = %v, %v", resp, err)
	}
	e.srv.SetServing(true)
	if err := e.client.Check(ctx); err != nil {
		t.Fatalf("health after ready: %v", err)
	}
}

func TestNewRefusesServerWithoutClientAuth(t *testing.T) {
	if _, err := server.New(server.NewStores(), &tls.Config{}, testr.New(t)); err == nil {
		t.Fatal("server without client certificate verification was built")
	}
}

func TestHealthOnUnixSocket(t *testing.T) {
	e := start(t, 1<<30)
	ctx, cancel := context.WithCancel(ctxT(t))
	sock := t.TempDir() + "/health.sock"
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.srv.ServeHealth(ctx, lis) }()
	if err := client.CheckHealthSocket(ctx, sock); err == nil {
		t.Fatal("health over the socket is SERVING before the daemon is ready")
	}
	e.srv.SetServing(true)
	if err := client.CheckHealthSocket(ctx, sock); err != nil {
		t.Fatalf("health over the socket: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("ServeHealth: %v", err)
	}
}

func TestIOStreamMultiplexesRequests(t *testing.T) {
	e := start(t, 1<<30)
	ctx := ctxT(t)
	if _, err := e.client.Volumes.CreateVolume(ctx, &nodepb.CreateVolumeRequest{Ref: ref("io"), SizeBytes: 16 << 20, StripeSizeBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	vio, err := e.client.OpenIO(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// 32 goroutines write and read back their own 64 KiB block at once over the one stream.
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := bytes.Repeat([]byte{byte(i + 1)}, 64<<10)
			off := int64(i) * (64 << 10)
			if err := vio.Write(ctx, ref("io"), off, data); err != nil {
				errs <- err
				return
			}
			got, err := vio.Read(ctx, ref("io"), off, int64(len(data)))
			if err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(got, data) {
				errs <- fmt.Errorf("block %d read back differs", i)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// A bad request fails alone; the stream goes on.
	if _, err := vio.Read(ctx, ref("io"), 16<<20, 1); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("read past the end over the stream = %v, want InvalidArgument", err)
	}
	if err := vio.Write(ctx, ref("missing"), 0, []byte{1}); status.Code(err) != codes.NotFound {
		t.Fatalf("write to a missing volume over the stream = %v, want NotFound", err)
	}
	if got, err := vio.Read(ctx, ref("io"), 0, 4); err != nil || !bytes.Equal(got, []byte{1, 1, 1, 1}) {
		t.Fatalf("stream unusable after failed requests: %v %v", got, err)
	}
	if err := vio.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := vio.Write(ctx, ref("io"), 0, []byte{1}); err == nil {
		t.Fatal("write on a closed stream succeeded")
	}
}

// TestServeReturnsNilAfterStop: Stop ends Serve without an error (servertest's cleanup fails
// the test on any error Serve returns).
func TestServeReturnsNilAfterStop(t *testing.T) {
	e := servertest.Start(t, 1<<30)
	e.Server.Stop()
}
