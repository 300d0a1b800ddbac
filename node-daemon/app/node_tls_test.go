package app

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/cobaltstore/cobalt/node-daemon/pki"
)

// TestPeerTLSReachesAnotherNodesServer: the peer client configuration a daemon issues itself is
// accepted by another daemon's server (mutual TLS, verified against the endpoint's host name),
// and one issued by another CA is refused.
func TestPeerTLSReachesAnotherNodesServer(t *testing.T) {
	ca, err := pki.NewCA("cobalt-test", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.NewCA("someone-else", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	serverNode := &node{cfg: &Config{NodeName: "node-b", AdvertiseAddr: "127.0.0.1"}}
	serving, _, err := serverNode.issueTLS(ca)
	if err != nil {
		t.Fatal(err)
	}
	_, peer, err := (&node{cfg: &Config{NodeName: "node-a"}}).issueTLS(ca)
	if err != nil {
		t.Fatal(err)
	}
	_, stranger, err := (&node{cfg: &Config{NodeName: "node-c"}}).issueTLS(other)
	if err != nil {
		t.Fatal(err)
	}
	if got := peer.Certificates[0].Leaf; got != nil && got.Subject.CommonName != "node-daemon-node-a" {
		t.Errorf("peer certificate name %q", got.Subject.CommonName)
	}

	lis, err := tls.Listen("tcp", "127.0.0.1:0", serving)
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			_ = c.Close()
		}
	}()
	dial := func(cfg *tls.Config, host string) error {
		cfg = cfg.Clone()
		cfg.ServerName = host
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", lis.Addr().String(), cfg)
		if err != nil {
			return err
		}
		defer c.Close()
		// TLS 1.3: the server checks the client certificate after the client's handshake ends;
		// a read shows whether it accepted it.
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 1))
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		return nil
	}
	for _, host := range []string{"node-b", "127.0.0.1"} {
		if err := dial(peer, host); err != nil {
			t.Errorf("peer of the same CA dialing %s: %v", host, err)
		}
	}
	if err := dial(peer, "node-x"); err == nil {
		t.Error("a server name not in the serving certificate was accepted")
	}
	// It trusts the server, but its own certificate is another CA's.
	stranger.RootCAs = ca.Pool()
	if err := dial(stranger, "node-b"); err == nil {
		t.Error("a peer certificate of another CA was accepted")
	}
}
