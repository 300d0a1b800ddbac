// Package servertest runs a node daemon gRPC server over mTLS on loopback, serving one in-memory
// store, for tests of clients (the Go client, the CLI, the operator's node client).
//
// Invariant: everything a test starts is stopped by t.Cleanup; certificates come from a CA made
// for the test, so no test shares keys with another.
package servertest

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
	"github.com/cobaltstore/cobalt/node-daemon/objstore/memstore"
	"github.com/cobaltstore/cobalt/node-daemon/pki"
	"github.com/cobaltstore/cobalt/node-daemon/server"
	"github.com/cobaltstore/cobalt/node-daemon/volume"
)

// StoreUUID is the UUID of the served in-memory store.
const StoreUUID = "11111111-2222-3333-4444-555555555555"

// Env is a running server.
type Env struct {
	CA     *pki.CA
	Addr   string
	Server *server.Server
	// Store is the in-memory store Start serves; nil from Serve.
	Store *memstore.Store
}

// Start serves one in-memory store of the given capacity; health is NOT_SERVING until the test
// calls Server.SetServing.
func Start(t testing.TB, capacity int64) *Env {
	t.Helper()
	st := memstore.New(StoreUUID, capacity)
	e := Serve(t, st)
	e.Store = st
	return e
}

// Serve serves st, any store (an engine store, for tests that need its space accounting), as
// Start does; Env.Store is nil. The caller closes st: registered with t.Cleanup before Serve is
// called, the close runs after the server has stopped.
func Serve(t testing.TB, st objstore.Store) *Env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	now := time.Now()
	ca, err := pki.NewCA("test-ca", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	serving, err := ca.IssueServing(pki.ServingRequest{CommonName: "node-a", DNSNames: []string{"node-a"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}, Now: now, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	serverTLS, err := pki.ServerTLSConfig(serving, ca.Pool())
	if err != nil {
		t.Fatal(err)
	}
	vm, err := volume.Open(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	stores := server.NewStores()
	if err := stores.Add(&server.Mounted{Store: st, Volumes: vm, DevicePath: "/dev/test"}); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(stores, serverTLS, testr.NewWithInterface(t, testr.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &Env{CA: ca, Addr: lis.Addr().String(), Server: srv}
}

// ClientTLS issues a client certificate named name and returns its TLS configuration.
func (e *Env) ClientTLS(t testing.TB, name string) *tls.Config {
	t.Helper()
	cert, err := e.CA.IssueClient(name, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := pki.ClientTLSConfig(cert, e.CA.Pool(), "")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TLSDir writes a client certificate named name into a temporary directory and returns it.
func (e *Env) TLSDir(t testing.TB, name string) string {
	t.Helper()
	cert, err := e.CA.IssueClient(name, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := pki.WriteTLSDir(dir, e.CA, cert); err != nil {
		t.Fatal(err)
	}
	return dir
}
