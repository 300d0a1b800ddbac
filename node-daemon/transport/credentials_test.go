package transport_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/credentials"

	"github.com/cobaltstore/cobalt/node-daemon/pki"
	"github.com/cobaltstore/cobalt/node-daemon/transport"
)

// countingConn counts the writes that reach the socket and can be made to fail them.
type countingConn struct {
	net.Conn
	writes atomic.Int64
	fail   atomic.Bool
}

var errInjected = errors.New("injected socket write failure")

func (c *countingConn) Write(p []byte) (int, error) {
	if c.fail.Load() {
		return 0, errInjected
	}
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// tlsPair returns the client and server TLS configurations of the node API, from a test CA.
func tlsPair(t testing.TB) (client, server *tls.Config) {
	t.Helper()
	now := time.Now()
	ca, err := pki.NewCA("test-ca", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	serving, err := ca.IssueServing(pki.ServingRequest{CommonName: "node-a", DNSNames: []string{"node-a"}, Now: now, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := ca.IssueClient("operator", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if server, err = pki.ServerTLSConfig(serving, ca.Pool()); err != nil {
		t.Fatal(err)
	}
	if client, err = pki.ClientTLSConfig(cl, ca.Pool(), "node-a"); err != nil {
		t.Fatal(err)
	}
	return client, server
}

// connect handshakes a client and a server over loopback TCP with credentials made by creds and
// returns both ends and the client's socket.
func connect(t testing.TB, creds func(*tls.Config) credentials.TransportCredentials) (client, server net.Conn, raw *countingConn) {
	t.Helper()
	clientCfg, serverCfg := tlsPair(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var (
		wg        sync.WaitGroup
		serverErr error
	)
	wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			serverErr = err
			return
		}
		server, _, serverErr = creds(serverCfg).ServerHandshake(c)
	})
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	raw = &countingConn{Conn: c}
	client, _, err = creds(clientCfg).ClientHandshake(context.Background(), "node-a", raw)
	wg.Wait()
	if err != nil || serverErr != nil {
		t.Fatalf("handshake: client %v, server %v", err, serverErr)
	}
	t.Cleanup(func() {
		client.Close()
		server.Close()
	})
	return client, server, raw
}

// send writes each of msgs with one Write on from and reads them all on to, checking the bytes;
// it returns the socket writes the client made for them.
func send(t *testing.T, from, to net.Conn, raw *countingConn, msgs ...[]byte) int64 {
	t.Helper()
	var want bytes.Buffer
	for _, m := range msgs {
		want.Write(m)
	}
	got := make([]byte, want.Len())
	// Records held back would never arrive: fail instead of waiting for them.
	if err := to.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var (
		wg      sync.WaitGroup
		readErr error
	)
	wg.Go(func() { _, readErr = io.ReadFull(to, got) })
	before := raw.writes.Load()
	for _, m := range msgs {
		if n, err := from.Write(m); err != nil || n != len(m) {
			t.Fatalf("Write of %d bytes = %d, %v", len(m), n, err)
		}
	}
	wg.Wait()
	if readErr != nil {
		t.Fatalf("read: %v", readErr)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatal("the bytes read differ from the bytes written")
	}
	return raw.writes.Load() - before
}

func random(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLargeWriteGoesOutInBatches(t *testing.T) {
	const size = 1 << 20
	// crypto/tls writes a record of at most 16 KiB of payload per system call (smaller ones
	// first on a fresh connection); a batch holds BatchSize bytes of records, so
	// size/BatchSize+1 writes at most.
	for _, tc := range []struct {
		name     string
		creds    func(*tls.Config) credentials.TransportCredentials
		min, max int64
	}{
		{"plain crypto/tls: a write per record", credentials.NewTLS, size / (16 << 10), size / 1024},
		{"batched", transport.NewTLS, 1, size/transport.BatchSize + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, server, raw := connect(t, tc.creds)
			n := send(t, client, server, raw, random(t, size))
			if n < tc.min || n > tc.max {
				t.Fatalf("a %d-byte write made %d socket writes, want %d to %d", size, n, tc.min, tc.max)
			}
			t.Logf("a %d-byte write made %d socket writes", size, n)
		})
	}
}

// Small writes are not held back for later ones: each goes to the socket before Write returns.
func TestSmallWritesAreNotHeldBack(t *testing.T) {
	client, server, raw := connect(t, transport.NewTLS)
	msgs := make([][]byte, 50)
	for i := range msgs {
		msgs[i] = random(t, 100+i)
	}
	if n := send(t, client, server, raw, msgs...); n != int64(len(msgs)) {
		t.Fatalf("%d small writes made %d socket writes, want one each", len(msgs), n)
	}
	// The other direction, and a reply to each, as a request and its response.
	buf := make([]byte, 4096)
	for i := range 20 {
		req := random(t, 4096+i)
		if _, err := client.Write(req); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(req))
		if _, err := io.ReadFull(server, got); err != nil || !bytes.Equal(got, req) {
			t.Fatalf("request %d: read %v, equal %v", i, err, bytes.Equal(got, req))
		}
		if _, err := server.Write(got[:64]); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(client, buf[:64]); err != nil || !bytes.Equal(buf[:64], req[:64]) {
			t.Fatalf("response %d: read %v", i, err)
		}
	}
}

// A failed socket write fails that Write and every later one, without reaching the socket again:
// whether it failed inside crypto/tls's write (a large one, whose batch filled up) or after it,
// when the batch was written out (a small one, which crypto/tls saw succeed).
func TestFailedSocketWriteIsSticky(t *testing.T) {
	for _, size := range []int{1000, 300 << 10} {
		client, server, raw := connect(t, transport.NewTLS)
		send(t, client, server, raw, random(t, 1000))
		raw.fail.Store(true)
		if _, err := client.Write(random(t, size)); !errors.Is(err, errInjected) {
			t.Fatalf("Write of %d bytes over a failing socket = %v, want %v", size, err, errInjected)
		}
		raw.fail.Store(false)
		before := raw.writes.Load()
		if _, err := client.Write(random(t, 100)); err == nil {
			t.Fatalf("Write after a failed socket write (of %d bytes) succeeded", size)
		}
		if n := raw.writes.Load() - before; n != 0 {
			t.Fatalf("a Write after the failure reached the socket %d times", n)
		}
	}
}
