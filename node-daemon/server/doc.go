// Package server implements the node daemon's gRPC services (node-daemon/proto): StoreService,
// ObjectService, VolumeService and ReplicaService (fenced replica I/O, node-daemon/replica) over
// the stores a daemon has mounted, plus grpc.health.v1.
//
// Invariants:
//   - Every request is validated before it reaches a store; a malformed request gets
//     InvalidArgument with a message naming the field, never a panic. A panic in a handler is
//     still caught by an interceptor and returned as Internal.
//   - Errors map to status codes in one place (status.go): NotFound, AlreadyExists,
//     InvalidArgument, ResourceExhausted (store full), FailedPrecondition (shrink, collection not
//     empty), DataLoss (corruption), Unavailable (store closing), Aborted (a create, delete or
//     resize of the same volume, or a create or delete of the same snapshot, already in flight);
//     a restore or clone smaller than its source gets OutOfRange with both sizes (snapshots.go);
//     ReplicaService answers a request of an older generation with FailedPrecondition and the
//     generation the replica recorded.
//   - The transport is mutual TLS (see package pki); NewGRPCServer refuses to build a server
//     without a TLS configuration that requires client certificates.
//   - The wire format is protobuf's. A request's write data is decoded for that write alone
//     and handed over to the store (WriteOwned): nothing else refers to it or changes it. A large
//     replica write's data is decoded aligned for direct I/O, in one copy (requestCodec).
package server
