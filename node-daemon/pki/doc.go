// Package pki is Cobalt's certificate authority for the node API: every call between the operator
// (and the CLI) and a node daemon is mutual TLS with certificates issued by one cluster CA.
//
// Layout: the CA's certificate and private key live in one Kubernetes Secret (keys "ca.crt" and
// "ca.key") that the operator creates once with EnsureCASecret. Leaf certificates are never
// stored: the operator issues itself a client certificate in memory at start-up, and each node
// daemon, which may read that one Secret, issues itself a serving certificate for its node name
// and pod IP. Restarting a process therefore rotates its leaf certificate.
//
// Invariants:
//   - Keys are ECDSA P-256; leaf certificates are signed by the CA and chain to it alone.
//   - A serving certificate has ExtKeyUsageServerAuth only and a client certificate
//     ExtKeyUsageClientAuth only, so a node daemon's certificate cannot act as the operator's.
//   - Server configurations require and verify a client certificate (tls.RequireAndVerifyClientCert);
//     both sides refuse anything below TLS 1.3.
//   - EnsureCASecret never replaces an existing CA: it loads it, or fails if it is unreadable.
package pki
