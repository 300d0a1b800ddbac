// Package objstore is the node daemon's view of a storage engine store: the small interface that
// the volume layer and the gRPC server are written against, its transaction ops, and its errors.
//
// The storage engine (storage-engine/store) is adapted to this interface by package engine; an
// in-memory implementation for tests lives in objstore/memstore. Keeping the daemon on this
// interface keeps the network and volume code testable without a device and keeps the daemon's
// error mapping in one place.
//
// Invariants every implementation keeps:
//   - Commit applies all of a transaction's ops or none, and the transaction is durable when Commit
//     returns nil. Ops of one transaction see the effects of the earlier ones.
//   - Errors wrap the sentinels of this package (ErrNotFound, ErrExists, ErrNotEmpty, ErrNoSpace,
//     ErrInvalid) so callers test them with errors.Is; corruption is reported as ErrCorrupt and
//     never as data.
//   - Read never returns bytes past the object's size: it returns fewer bytes than asked for when
//     the range crosses the end.
package objstore
