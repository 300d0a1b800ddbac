// Package client is the Go client of the node daemon's gRPC API: one mTLS connection to one
// daemon, with the generated service clients and helpers for the volume operations the operator
// and the CLI need (streaming a reader into a volume and a volume range out to a writer).
//
// Invariants: a Client never dials without a client certificate (Dial refuses a TLS configuration
// without one); message limits match the server's (server.MaxMessageSize); status errors from the
// daemon are returned unchanged so callers can inspect codes with status.Code.
package client
