package pki

import (
	"crypto/ecdsa"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Names of the files of a TLS directory (the layout of a kubernetes.io/tls Secret plus ca.crt).
const (
	FileCA   = "ca.crt"
	FileCert = "tls.crt"
	FileKey  = "tls.key"
)

// WriteTLSDir writes ca's certificate and cert with its key into dir (created with mode 0700;
// the key file is 0600), for tools that take certificates from files.
func WriteTLSDir(dir string, ca *CA, cert tls.Certificate) error {
	key, ok := cert.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || len(cert.Certificate) == 0 {
		return errors.New("pki: certificate without an ECDSA key")
	}
	keyPEM, err := encodeKeyPEM(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pki: create %s: %w", dir, err)
	}
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{FileCA, ca.CertPEM(), 0o644},
		{FileCert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o644},
		{FileKey, keyPEM, 0o600},
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return fmt.Errorf("pki: write %s: %w", f.name, err)
		}
	}
	return nil
}
