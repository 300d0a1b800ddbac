package replica

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"slices"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
)

// The persisted dirty log (DirtyStore) is, in this order:
//
//	magic "CDLG" | format version (1 byte, dirtyFormatV1) | region size (8 bytes, little endian)
//	| replica count (uvarint) | per replica, sorted by name: name length (uvarint), name,
//	run count (uvarint), runs | CRC-32C (Castagnoli) of everything before it (4 bytes, LE)
//
// A run is a maximal span of dirty regions: its gap from the end of the previous run (from
// region 0 for the first) and its region count (>= 1), both uvarints, so runs are sorted, apart
// and never adjacent.
const (
	dirtyMagic    = "CDLG"
	dirtyFormatV1 = 1
	// maxDirtyRegions bounds the regions one replica may have in a decoded log (64 TiB of 1 MiB
	// regions), so a corrupt log cannot make the loader allocate without bound.
	maxDirtyRegions = 1 << 26
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// dirtyRun is count regions from region index first.
type dirtyRun struct {
	first, count int64
}

// dirtySnapshot is the content of a persisted dirty log: per replica, its dirty runs.
type dirtySnapshot struct {
	regionSize int64
	runs       map[string][]dirtyRun
}

// runsOf turns region indexes into sorted, merged runs.
func runsOf(idx []int64) []dirtyRun {
	slices.Sort(idx)
	var out []dirtyRun
	for _, i := range idx {
		if n := len(out); n > 0 && out[n-1].first+out[n-1].count == i {
			out[n-1].count++
			continue
		}
		out = append(out, dirtyRun{first: i, count: 1})
	}
	return out
}

// encodeDirty encodes s (replicas without runs are left out).
func encodeDirty(s dirtySnapshot) []byte {
	names := make([]string, 0, len(s.runs))
	for name, runs := range s.runs {
		if len(runs) > 0 {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	b := append([]byte(dirtyMagic), dirtyFormatV1)
	b = binary.LittleEndian.AppendUint64(b, uint64(s.regionSize))
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, name := range names {
		b = binary.AppendUvarint(b, uint64(len(name)))
		b = append(b, name...)
		b = appendRuns(b, s.runs[name])
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crc32c))
}

// appendRuns appends the run count and the runs (sorted, apart) to b.
func appendRuns(b []byte, runs []dirtyRun) []byte {
	b = binary.AppendUvarint(b, uint64(len(runs)))
	var end int64
	for _, r := range runs {
		b = binary.AppendUvarint(b, uint64(r.first-end))
		b = binary.AppendUvarint(b, uint64(r.count))
		end = r.first + r.count
	}
	return b
}

// errDirtyCorrupt is wrapped by every decoding error.
var errDirtyCorrupt = fmt.Errorf("replica: persisted dirty log: %w", objstore.ErrCorrupt)

// decodeDirty decodes a log encodeDirty made; any other input is an error wrapping
// objstore.ErrCorrupt.
func decodeDirty(b []byte) (dirtySnapshot, error) {
	var s dirtySnapshot
	regionSize, d, err := decodeHeader(b, dirtyMagic, dirtyFormatV1, errDirtyCorrupt)
	if err != nil {
		return s, err
	}
	s.regionSize = regionSize
	nrep := d.uvarint(uint64(len(d.b)))
	s.runs = make(map[string][]dirtyRun, nrep)
	prev := ""
	for range nrep {
		name := string(d.bytes(d.uvarint(uint64(len(d.b)))))
		if d.err == nil && (name == "" || name <= prev && prev != "" || s.runs[name] != nil) {
			d.fail(fmt.Sprintf("replica name %q empty or out of order", name))
		}
		runs := d.runs(regionSize)
		if d.err != nil {
			return dirtySnapshot{}, d.err
		}
		if len(runs) == 0 {
			return dirtySnapshot{}, fmt.Errorf("%w: replica %q without runs", errDirtyCorrupt, name)
		}
		s.runs[name] = runs
		prev = name
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail(fmt.Sprintf("%d trailing bytes", len(d.b)))
	}
	if d.err != nil {
		return dirtySnapshot{}, d.err
	}
	return s, nil
}

// decodeHeader checks the checksum, magic, format version and region size of an encoded region
// log (the dirty log's layout, also the write-intent log's), and returns the region size and a
// decoder of what follows the header; its errors wrap corrupt.
func decodeHeader(b []byte, magic string, version byte, corrupt error) (int64, *dirtyDecoder, error) {
	header := len(magic) + 1 + 8
	if len(b) < header+4 {
		return 0, nil, fmt.Errorf("%w: %d bytes is too short", corrupt, len(b))
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if got := crc32.Checksum(body, crc32c); got != sum {
		return 0, nil, fmt.Errorf("%w: checksum %08x, want %08x", corrupt, got, sum)
	}
	if string(body[:len(magic)]) != magic {
		return 0, nil, fmt.Errorf("%w: bad magic %q", corrupt, body[:len(magic)])
	}
	if v := body[len(magic)]; v != version {
		return 0, nil, fmt.Errorf("%w: unknown format version %d", corrupt, v)
	}
	rs := binary.LittleEndian.Uint64(body[len(magic)+1:])
	if rs < 4096 || rs > 1<<40 || rs&(rs-1) != 0 {
		return 0, nil, fmt.Errorf("%w: region size %d", corrupt, rs)
	}
	return int64(rs), &dirtyDecoder{b: body[header:], corrupt: corrupt}, nil
}

// dirtyDecoder reads uvarints, byte strings and runs, remembering the first error (which wraps
// corrupt).
type dirtyDecoder struct {
	b       []byte
	corrupt error
	err     error
}

func (d *dirtyDecoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", d.corrupt, what)
	}
}

// runs reads a run count and the runs appendRuns wrote, of regions of regionSize bytes: sorted,
// apart, at most maxDirtyRegions regions in all, every region index below MaxInt64/regionSize.
func (d *dirtyDecoder) runs(regionSize int64) []dirtyRun {
	maxRegion := uint64(math.MaxInt64 / regionSize) // region indexes stay below it
	nrun := d.uvarint(uint64(len(d.b)) / 2)         // each run takes at least 2 bytes
	var runs []dirtyRun
	var end, total uint64
	for i := range nrun {
		gap := d.uvarint(maxRegion)
		count := d.uvarint(maxDirtyRegions)
		if d.err != nil {
			return nil
		}
		if count == 0 || (i > 0 && gap == 0) {
			d.fail("empty or adjacent run")
			return nil
		}
		first := end + gap
		if first > maxRegion || count > maxRegion-first || total+count > maxDirtyRegions {
			d.fail("run out of range")
			return nil
		}
		runs = append(runs, dirtyRun{first: int64(first), count: int64(count)})
		end, total = first+count, total+count
	}
	return runs
}

// uvarint reads a uvarint no larger than limit.
func (d *dirtyDecoder) uvarint(limit uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("truncated or overlong number")
		return 0
	}
	if v > limit {
		d.fail(fmt.Sprintf("number %d above its limit %d", v, limit))
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dirtyDecoder) bytes(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail("truncated string")
		return nil
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}
