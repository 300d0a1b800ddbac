// Package transport is the node API's transport security: gRPC credentials for mutual TLS
// (credentials.NewTLS) whose records reach the socket in batches.
//
// Go's crypto/tls writes every TLS record (at most 16 KiB of payload) with its own write system
// call, so a 1 MiB replicated write went to the kernel in 64 writes, each a trip through the
// loopback or network stack and a wake-up of the reader; the replica benchmark counted 66 write
// calls per remote MiB. Here the records that one write of gRPC's transport produces are
// gathered and handed to the socket together, up to BatchSize bytes at a time.
//
// Invariants:
//   - What reaches the socket is byte for byte what crypto/tls produced, in the same order: the
//     batching changes only how many system calls carry it.
//   - A record is never held back once the write that produced it returns: every batched write
//     ends with the records it gathered written out. Records crypto/tls writes on its own (the
//     handshake, alerts, a close_notify) go out at once, or with the batch they joined.
//   - A failed socket write fails that write and every later one with the same error, as
//     crypto/tls does, so gRPC closes the connection and nothing is sent after a gap.
package transport
