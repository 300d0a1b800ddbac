// Package engine adapts the storage engine (storage-engine/store) to the node daemon: it
// implements app.Engine (mkfs and mount on a device path) and objstore.Store over a mounted store,
// translating transactions, offsets and errors, and reports the engine's metrics as a
// metrics.StoreSnapshot.
//
// Invariants: a mounted store owns its device and closes it after the store (Close flushes
// deferred writes, closes the metadata database, then the device); engine errors are wrapped so
// that errors.Is matches both the engine's sentinel and objstore's (store.ErrNotFound and
// objstore.ErrNotFound, ...), corruption included (objstore.ErrCorrupt); ops go through
// objstore.Apply (validation, then txn.go builds the engine transaction), and read arguments
// through objstore's validators, so negative offsets and lengths never reach the engine, which
// takes unsigned ones. Each mounted store runs on its device watched for I/O errors
// (watchedDevice): from the first one on, Snapshot reports the store Failed with reason
// metrics.HealthReasonDeviceFailed and the error, whatever the engine's own health says; so it
// does when the engine's metadata database stopped on a failed device no watched device saw
// (store.ReasonMetadataDeviceFailed: a legacy store's host directory). With Settings.GC (the
// node daemon's GCBudget, one per process), each mounted store counts its memory target in the Go
// collector's settings from Open to Close, once, or for good when Close abandons it on a stuck
// metadata database, whose memory stays until the process exits (cache.GCSettingsFor). The adapter passes the
// objstore conformance suite (objstoretest), each test followed by a deep fsck.
package engine
