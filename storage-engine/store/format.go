package store

// FormatVersion is the metadata format Mkfs writes in the superblock and the only one Open
// mounts: a ratchet, so a build never misreads metadata of another format.
//
//   - 1: each onode record held its whole extent map with every checksum.
//   - 2: extent maps live in shards under their own keys (storage-engine/onode shard.go,
//     storage-engine/kv E keys); the onode record holds the rest.
const FormatVersion = 2

// formatHistory is what an error about an unsupported format tells the operator.
const formatHistory = "format 2 stores extent maps in shards; a format-1 store must be re-created"
