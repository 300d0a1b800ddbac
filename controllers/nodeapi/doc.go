// Package nodeapi is the operator's side of the node API: Client implements
// controllers.NodeClient (create, grow and delete a Volume's space on the Store that holds it,
// restore or clone it from a source on that Store, and take, describe and delete Snapshots)
// over the node daemons' gRPC client (node-daemon/client). cmd/manager builds one with the
// operator's client certificate and hands it to the Volume and Snapshot reconcilers.
//
// It sits below controllers in the directory tree but above it in the import graph: nodeapi
// imports controllers (for the interface it implements and the errors it marks) and
// node-daemon/client, and controllers never imports nodeapi or anything of node-daemon; the
// reconcilers only know the interface. The node daemon never imports nodeapi.
//
// Invariants: a Client never dials without a client certificate; the daemon to call is the one
// whose address the Store's storage.cobalt.io/node-endpoint annotation
// (v1alpha1.AnnotationNodeEndpoint) names, with one cached connection per address; a volume is
// addressed by the Store's UUID and the Volume's NodeVolumeID (its UID), a snapshot by the
// Snapshot's NodeSnapshotID (its UID); sizes are rounded up to the node's 4096-byte alignment
// and always named, also for a restore or clone; a daemon's ResourceExhausted is wrapped with
// controllers.ErrInsufficientCapacity, its OutOfRange (a restore or clone smaller than its
// source) with controllers.ErrSmallerThanSource, GetSnapshot's NotFound with
// controllers.ErrSnapshotNotFound, and DeleteSnapshot's NotFound counts as done; every error
// keeps its status code.
package nodeapi
