package transport

import (
	"context"
	"crypto/tls"
	"net"

	"google.golang.org/grpc/credentials"
)

// NewTLS returns gRPC transport credentials that are credentials.NewTLS(cfg) with the records of
// each write batched (see the package comment). Both ends of the node API use it; a peer
// that uses plain credentials.NewTLS interoperates, since the bytes on the wire are the same.
func NewTLS(cfg *tls.Config) credentials.TransportCredentials {
	return &batchedTLS{TransportCredentials: credentials.NewTLS(cfg)}
}

// batchedTLS runs the TLS handshake of the credentials it wraps over a recordWriter and returns
// a connection whose writes batch their records.
type batchedTLS struct {
	credentials.TransportCredentials
}

// ClientHandshake implements credentials.TransportCredentials.
func (b *batchedTLS) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	w := newRecordWriter(raw)
	conn, info, err := b.TransportCredentials.ClientHandshake(ctx, authority, w)
	if err != nil {
		return nil, nil, err
	}
	return &batchedConn{Conn: conn, w: w}, info, nil
}

// ServerHandshake implements credentials.TransportCredentials.
func (b *batchedTLS) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	w := newRecordWriter(raw)
	conn, info, err := b.TransportCredentials.ServerHandshake(w)
	if err != nil {
		return nil, nil, err
	}
	return &batchedConn{Conn: conn, w: w}, info, nil
}

// Clone implements credentials.TransportCredentials.
func (b *batchedTLS) Clone() credentials.TransportCredentials {
	return &batchedTLS{TransportCredentials: b.TransportCredentials.Clone()}
}
