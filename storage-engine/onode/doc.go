// Package onode defines the Onode, the per-object metadata record of a Cobalt store, and its
// versioned binary encoding.
//
// An Onode holds an object's logical size, its extent map (logical ranges mapped to physical device
// ranges, each with one crc32c per checksum block), its extended attributes and its omap header.
// Omap keys themselves live in the KV store under the onode's Nid, so renaming an object never
// rewrites them.
//
// Invariants of a valid Onode (checked by Validate and enforced by Decode):
//   - extents are sorted by Logical and do not overlap;
//   - every extent has Length > 0 and Logical+Length and Phys+Length do not overflow;
//   - Csums has exactly Length/csumBlock entries (checked by the store, which knows csumBlock).
//
// Storage: the onode record (Encode, Decode) holds everything but the extent map, which is stored
// in fixed-span shards (shard.go: EncodeShard, DecodeShard, AddShard), so a small overwrite of a
// large object rewrites one shard rather than every checksum of the object. Punch, Insert and
// MarkDirty record which shards changed.
//
// Copies: Clone shares no memory with the original. Fork, the copy a store stages a change on
// while readers keep the original, shares the extents' checksum arrays, which nothing changes in
// place but SetCsum, and SetCsum copies an extent's array before its first change in that onode.
//
// Decode and DecodeShard never panic: any input that is not a valid encoding yields an error
// wrapping ErrCorrupt.
// Encodings carry a format version byte; Decode refuses versions it does not know.
package onode
