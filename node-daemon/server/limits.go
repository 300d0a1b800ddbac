package server

// The limits of the API (message sizes, windows, transaction and page bounds) are nodepb's
// (node-daemon/proto/limits.go): the client dials with the same ones. What follows is the
// server's own.

// omapBatch is how many entries one OmapIterate message carries.
const omapBatch = 256
