// Package nodepb is the node daemon's network API: protobuf messages and gRPC services generated
// from the .proto files beside this file by `make proto`. Never edit the *.pb.go files by hand.
//
// Four services make up the API, all served on one mTLS port next to grpc.health.v1.Health:
//   - StoreService (store.proto): the stores a daemon hosts and their capacity.
//   - ObjectService (object.proto): the storage engine's object API (transactions, reads, xattrs,
//     omap, listings) for tools and tests.
//   - VolumeService (volume.proto): thin-provisioned volumes made of stripe objects, with
//     read/write/flush/trim at byte offsets, and their snapshots, restores and clones (sharing
//     data by reference count); this is what the operator, the CSI controller and the CLI use.
//   - ReplicaService (replica.proto): the fenced, pipelined I/O stream between the node that
//     coordinates a replicated volume and the nodes holding its other copies (node-daemon/replica),
//     with the written-extent map and per-block CRC-32C a rebuild, resync or scrub asks for.
//
// Every request names its store by UUID. Status codes are part of the contract and documented on
// each service. The limits both ends configure (message and I/O sizes, flow-control windows,
// transaction and page bounds) are in limits.go, written by hand beside the generated code: the
// server enforces them and node-daemon/client dials with them.
package nodepb

//go:generate make -C ../.. proto
