package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"time"
)

// ServingRequest describes a node daemon's serving certificate.
type ServingRequest struct {
	// CommonName is usually the node name.
	CommonName string
	// DNSNames and IPs are the subject alternative names clients dial (node name, pod IP).
	DNSNames []string
	IPs      []net.IP
	// Validity is how long the certificate is valid from Now.
	Now      time.Time
	Validity time.Duration
}

// IssueServing issues a server certificate (ExtKeyUsageServerAuth) for a node daemon.
func (ca *CA) IssueServing(req ServingRequest) (tls.Certificate, error) {
	if len(req.DNSNames) == 0 && len(req.IPs) == 0 {
		return tls.Certificate{}, errors.New("pki: serving certificate needs at least one DNS name or IP")
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: req.CommonName, Organization: []string{Organization}},
		DNSNames:    req.DNSNames,
		IPAddresses: req.IPs,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	return ca.issue(tmpl, req.Now, req.Validity)
}

// IssueClient issues a client certificate (ExtKeyUsageClientAuth) named commonName, such as the
// operator's or the CLI's.
func (ca *CA) IssueClient(commonName string, now time.Time, validity time.Duration) (tls.Certificate, error) {
	if commonName == "" {
		return tls.Certificate{}, errors.New("pki: client certificate common name is empty")
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: commonName, Organization: []string{Organization}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	return ca.issue(tmpl, now, validity)
}

func (ca *CA) issue(tmpl *x509.Certificate, now time.Time, validity time.Duration) (tls.Certificate, error) {
	if validity <= 0 {
		return tls.Certificate{}, fmt.Errorf("pki: validity %v is not positive", validity)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: generate key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = now.Add(-clockSkew)
	tmpl.NotAfter = now.Add(validity)
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: sign certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: parse issued certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}
