package pki

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)

func mustCA(t *testing.T) *CA {
	t.Helper()
	ca, err := NewCA("test-ca", testNow, 24*time.Hour)
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	return ca
}

func TestCAPEMRoundTrip(t *testing.T) {
	ca := mustCA(t)
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseCA(ca.CertPEM(), keyPEM)
	if err != nil {
		t.Fatalf("ParseCA: %v", err)
	}
	if !got.Cert.Equal(ca.Cert) || !got.Key.Equal(ca.Key) {
		t.Fatal("parsed CA differs from the original")
	}
}

func TestParseCARejects(t *testing.T) {
	ca := mustCA(t)
	other := mustCA(t)
	otherKey, _ := other.KeyPEM()
	leaf, err := ca.IssueClient("x", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leafPEM := (&CA{Cert: leaf.Leaf}).CertPEM()
	caKey, _ := ca.KeyPEM()
	tests := []struct {
		name       string
		cert, key  []byte
		wantSubstr string
	}{
		{"empty", nil, nil, "no PEM CERTIFICATE"},
		{"garbage cert", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), caKey, "parse certificate"},
		{"not a CA", leafPEM, caKey, "not a CA"},
		{"missing key", ca.CertPEM(), nil, "no PEM PRIVATE KEY"},
		{"mismatched key", ca.CertPEM(), otherKey, "does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCA(tt.cert, tt.key)
			if err == nil || !strings.Contains(err.Error(), tt.wantSubstr) {
				t.Fatalf("ParseCA error = %v, want it to contain %q", err, tt.wantSubstr)
			}
		})
	}
}

func TestIssuedCertificates(t *testing.T) {
	ca := mustCA(t)
	serving, err := ca.IssueServing(ServingRequest{
		CommonName: "node-a", DNSNames: []string{"node-a"}, IPs: []net.IP{net.ParseIP("10.1.2.3")},
		Now: testNow, Validity: 24 * time.Hour,
	})
	if err != nil {
		t.Fatalf("IssueServing: %v", err)
	}
	client, err := ca.IssueClient("cobalt-operator", testNow, 24*time.Hour)
	if err != nil {
		t.Fatalf("IssueClient: %v", err)
	}
	verify := func(cert *x509.Certificate, usage x509.ExtKeyUsage, dns string) error {
		_, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), CurrentTime: testNow, KeyUsages: []x509.ExtKeyUsage{usage}, DNSName: dns})
		return err
	}
	if err := verify(serving.Leaf, x509.ExtKeyUsageServerAuth, "node-a"); err != nil {
		t.Errorf("serving cert does not verify as server for node-a: %v", err)
	}
	if err := verify(serving.Leaf, x509.ExtKeyUsageServerAuth, "node-b"); err == nil {
		t.Error("serving cert for node-a verified for node-b")
	}
	if err := verify(serving.Leaf, x509.ExtKeyUsageClientAuth, ""); err == nil {
		t.Error("serving cert verified as a client certificate")
	}
	if err := verify(client.Leaf, x509.ExtKeyUsageClientAuth, ""); err != nil {
		t.Errorf("client cert does not verify as client: %v", err)
	}
	if err := verify(client.Leaf, x509.ExtKeyUsageServerAuth, ""); err == nil {
		t.Error("client cert verified as a server certificate")
	}
	if !serving.Leaf.NotAfter.Equal(ca.Cert.NotAfter) && serving.Leaf.NotAfter.After(ca.Cert.NotAfter) {
		t.Error("leaf outlives its CA")
	}
	if _, err := ca.IssueServing(ServingRequest{CommonName: "x", Now: testNow, Validity: time.Hour}); err == nil {
		t.Error("serving certificate without SANs was issued")
	}
	if _, err := ca.IssueClient("", testNow, time.Hour); err == nil {
		t.Error("client certificate without a name was issued")
	}
}

// handshake runs a TLS handshake between a server and a client configuration over loopback TCP
// and returns the client's and the server's errors. The server sends one byte after a successful
// handshake, so that a client refused after the TLS 1.3 handshake sees the server's alert.
func handshake(t *testing.T, server, client *tls.Config) (clientErr, serverErr error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer conn.Close()
		srv := tls.Server(conn, server)
		if err := srv.HandshakeContext(ctx); err != nil {
			done <- err
			return
		}
		_, err = srv.Write([]byte{1})
		done <- err
	}()
	var d tls.Dialer
	d.Config = client
	conn, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err == nil {
		_, err = io.ReadFull(conn, make([]byte, 1))
		conn.Close()
	}
	return err, <-done
}

func TestMutualTLS(t *testing.T) {
	now := time.Now()
	ca, err := NewCA("test-ca", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := NewCA("foreign-ca", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	serving, err := ca.IssueServing(ServingRequest{CommonName: "node-a", DNSNames: []string{"node-a"}, Now: now, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	operator, _ := ca.IssueClient("cobalt-operator", now, time.Hour)
	intruder, _ := foreign.IssueClient("cobalt-operator", now, time.Hour)
	serverCfg, err := ServerTLSConfig(serving, ca.Pool())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		client  func() *tls.Config
		wantErr bool
	}{
		{"operator certificate", func() *tls.Config {
			cfg, _ := ClientTLSConfig(operator, ca.Pool(), "node-a")
			return cfg
		}, false},
		{"no client certificate", func() *tls.Config {
			return &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: ca.Pool(), ServerName: "node-a"}
		}, true},
		{"certificate from another CA", func() *tls.Config {
			cfg, _ := ClientTLSConfig(intruder, ca.Pool(), "node-a")
			return cfg
		}, true},
		{"serving certificate used as a client", func() *tls.Config {
			cfg, _ := ClientTLSConfig(serving, ca.Pool(), "node-a")
			return cfg
		}, true},
		{"client does not trust the server", func() *tls.Config {
			cfg, _ := ClientTLSConfig(operator, foreign.Pool(), "node-a")
			return cfg
		}, true},
		{"wrong server name", func() *tls.Config {
			cfg, _ := ClientTLSConfig(operator, ca.Pool(), "node-b")
			return cfg
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clientErr, serverErr := handshake(t, serverCfg, tt.client())
			failed := clientErr != nil || serverErr != nil
			if failed != tt.wantErr {
				t.Fatalf("client error %v, server error %v; want failure %v", clientErr, serverErr, tt.wantErr)
			}
		})
	}
}

func TestTLSConfigValidation(t *testing.T) {
	ca := mustCA(t)
	if _, err := ServerTLSConfig(tls.Certificate{}, ca.Pool()); err == nil {
		t.Error("server config without certificate accepted")
	}
	cert, _ := ca.IssueClient("c", time.Now(), time.Hour)
	if _, err := ServerTLSConfig(cert, nil); err == nil {
		t.Error("server config without client CAs accepted")
	}
	if _, err := ClientTLSConfig(cert, nil, ""); err == nil {
		t.Error("client config without roots accepted")
	}
	cfg, err := ServerTLSConfig(cert, ca.Pool())
	if err != nil || cfg.ClientAuth != tls.RequireAndVerifyClientCert || cfg.MinVersion != tls.VersionTLS13 {
		t.Errorf("server config = %+v, %v; want mTLS 1.3", cfg, err)
	}
}

func TestWriteTLSDirLoads(t *testing.T) {
	ca := mustCA(t)
	cert, err := ca.IssueClient("cli", testNow, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir() + "/tls"
	if err := WriteTLSDir(dir, ca, cert); err != nil {
		t.Fatal(err)
	}
	loaded, err := tls.LoadX509KeyPair(dir+"/"+FileCert, dir+"/"+FileKey)
	if err != nil {
		t.Fatalf("written pair does not load: %v", err)
	}
	if !bytes.Equal(loaded.Certificate[0], cert.Certificate[0]) {
		t.Fatal("loaded certificate differs")
	}
	if err := WriteTLSDir(dir, ca, tls.Certificate{}); err == nil {
		t.Fatal("certificate without key written")
	}
}
