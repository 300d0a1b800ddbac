package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
)

// ServerTLSConfig returns the configuration of an mTLS server: it presents cert and accepts only
// clients whose certificate (ExtKeyUsageClientAuth) chains to clientCAs.
func ServerTLSConfig(cert tls.Certificate, clientCAs *x509.CertPool) (*tls.Config, error) {
	if len(cert.Certificate) == 0 {
		return nil, errors.New("pki: server TLS config without a certificate")
	}
	if clientCAs == nil {
		return nil, errors.New("pki: server TLS config without client CAs")
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clientCAs,
	}, nil
}

// ClientTLSConfig returns the configuration of an mTLS client: it presents cert and accepts only
// servers whose certificate chains to rootCAs. serverName, when set, is the name checked against
// the server's certificate instead of the dialed host.
func ClientTLSConfig(cert tls.Certificate, rootCAs *x509.CertPool, serverName string) (*tls.Config, error) {
	if len(cert.Certificate) == 0 {
		return nil, errors.New("pki: client TLS config without a certificate")
	}
	if rootCAs == nil {
		return nil, errors.New("pki: client TLS config without root CAs")
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		RootCAs:      rootCAs,
		ServerName:   serverName,
	}, nil
}
