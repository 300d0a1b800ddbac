// Package objstore is the node daemon's view of a storage engine store: the small interface that
// the volume layer and the gRPC server are written against, its transaction ops, and its errors.
//
// The storage engine (storage-engine/store) is adapted to this interface by package engine; an
// in-memory implementation for tests lives in objstore/memstore. Keeping the daemon on this
// interface keeps the network and volume code testable without a device and keeps the daemon's
// error mapping in one place.
//
// The ops are defined once: op.go gives each op's semantics, Op.Validate its validation (names and
// limits in limits.go), and Apply (apply.go) is the one switch over op kinds, which drives the
// small Applier interface an implementation provides (memstore stages copies, the engine adapter
// builds an engine transaction). The gRPC server only decodes protobuf ops into Ops; OpCloneTo
// (a clone into another collection, what volume snapshots are made of) has no protobuf form yet
// and is used only inside the daemon. Package objstoretest is the conformance suite of this
// contract; every implementation runs it. A Store may also read without its data cache
// (NoCacheReader, optional: the engine adapter does, for replica copies and comparisons), and
// into the caller's buffer (IntoReader and NoCacheIntoReader, optional: the engine adapter and
// memstore do; ReaderInto adapts any Store), which spares the volume layer's hot reads a result
// buffer per read.
//
// Invariants every implementation keeps:
//   - Commit applies all of a transaction's ops or none, and the transaction is durable when Commit
//     returns nil. Ops of one transaction see the effects of the earlier ones. A transaction with
//     an invalid op fails with ErrInvalid before any op is applied.
//   - Errors wrap the sentinels of this package (ErrNotFound, ErrExists, ErrNotEmpty, ErrNoSpace,
//     ErrInvalid) so callers test them with errors.Is; corruption is reported as ErrCorrupt and
//     never as data. Bad input (names, negative or overflowing ranges) is ErrInvalid, never a panic.
//   - Read never returns bytes past the object's size: it returns fewer bytes than asked for when
//     the range crosses the end, and none at or past the end. Holes read as zeros and take no space.
//   - CollectionUsage's Exclusive never exceeds its Referenced; a store that shares data between
//     clones (the engine) counts shared space once and only in no collection's Exclusive while
//     another collection still references it.
//   - Buffers passed in may be reused by the caller once the call returns, and buffers returned
//     belong to the caller.
package objstore
