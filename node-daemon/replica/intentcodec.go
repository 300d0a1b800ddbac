package replica

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
)

// The persisted write-intent log (IntentAttr) is, in this order:
//
//	magic "CWIL" | format version (1 byte, intentFormatV1) | region size (8 bytes, little endian)
//	| run count (uvarint), runs | CRC-32C (Castagnoli) of everything before it (4 bytes, LE)
//
// Runs are encoded as in the dirty log (see dirtycodec.go): sorted, apart, never adjacent. An
// attribute with no run is a log that tracks writes and has no region marked.
const (
	intentMagic    = "CWIL"
	intentFormatV1 = 1
)

// errIntentCorrupt is wrapped by every decoding error of a write-intent log.
var errIntentCorrupt = fmt.Errorf("replica: persisted write-intent log: %w", objstore.ErrCorrupt)

// encodeIntent encodes the marked regions idx (any order) of regionSize bytes.
func encodeIntent(regionSize int64, idx []int64) []byte {
	b := append([]byte(intentMagic), intentFormatV1)
	b = binary.LittleEndian.AppendUint64(b, uint64(regionSize))
	b = appendRuns(b, runsOf(idx))
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crc32c))
}

// decodeIntent decodes a log encodeIntent made into its region size and runs; any other input is
// an error wrapping objstore.ErrCorrupt.
func decodeIntent(b []byte) (int64, []dirtyRun, error) {
	regionSize, d, err := decodeHeader(b, intentMagic, intentFormatV1, errIntentCorrupt)
	if err != nil {
		return 0, nil, err
	}
	runs := d.runs(regionSize)
	if d.err == nil && len(d.b) != 0 {
		d.fail(fmt.Sprintf("%d trailing bytes", len(d.b)))
	}
	if d.err != nil {
		return 0, nil, d.err
	}
	return regionSize, runs, nil
}
