// Package client is the Go client of the node daemon's gRPC API: one mTLS connection to one
// daemon, with the generated service clients and helpers for the volume operations the operator
// and the CLI need (streaming a reader into a volume and a volume range out to a writer;
// snapshots, restores and clones, with a listing that follows the daemon's pages), and the health
// check the daemon's `health` subcommand runs.
//
// It is a leaf of the node API: from this module it imports only node-daemon/proto, and nothing
// from Kubernetes, so the operator, the CLI and the daemon's own probe link the client and no
// more (test/layers checks it). What the operator needs on top of it, the implementation of
// controllers.NodeClient, is the operator's: package controllers/nodeapi.
//
// Invariants: a Client never dials without a client certificate (Dial refuses a TLS configuration
// without one); message sizes, flow-control windows and buffers are nodepb's limits, the same the
// server is configured with (nodepb.MaxMessageSize); status errors from the daemon are returned
// unchanged so callers can inspect codes with status.Code.
package client
