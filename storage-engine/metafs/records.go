package metafs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// opKind is the type of a journal record.
type opKind uint8

// Journal record kinds. Each record is one change to the file system's metadata; replaying the
// records of a journal in order from an empty state rebuilds the state they describe. A snapshot
// (written when the journal is compacted) is an ordinary sequence of records.
const (
	opMkdir     opKind = 1  // path: the directory exists (its parents too)
	opCreate    opKind = 2  // ino, path: a new empty inode, linked at path (replacing what was there)
	opLink      opKind = 3  // ino, path: a further name for ino (replacing what was there)
	opUnlink    opKind = 4  // path: the name is gone; an inode with no names left is freed
	opRename    opKind = 5  // path, path2: the name moves, replacing what was at path2
	opSetSize   opKind = 6  // ino, size: the file's durable length
	opAddExtent opKind = 7  // ino, off, len: the file's next extent (device bytes), appended to its list
	opRmdir     opKind = 8  // path: an empty directory is gone
	opAddSpace  opKind = 9  // off, len: device bytes after the region become part of the file system
	opTrim      opKind = 10 // ino, n: the file keeps its first n bytes of space (whole units), the rest is freed
)

func (k opKind) String() string {
	switch k {
	case opMkdir:
		return "mkdir"
	case opCreate:
		return "create"
	case opLink:
		return "link"
	case opUnlink:
		return "unlink"
	case opRename:
		return "rename"
	case opSetSize:
		return "setsize"
	case opAddExtent:
		return "addextent"
	case opRmdir:
		return "rmdir"
	case opAddSpace:
		return "addspace"
	case opTrim:
		return "trim"
	}
	return fmt.Sprintf("op(%d)", uint8(k))
}

// record is one decoded journal record. Which fields are meaningful depends on kind.
type record struct {
	kind  opKind
	ino   uint64
	path  string
	path2 string
	off   uint64 // opAddExtent, opAddSpace: device offset
	n     uint64 // opSetSize: size; opAddExtent, opAddSpace: length; opTrim: space kept
}

// maxPath bounds a path in a record, so a corrupt length cannot make the decoder allocate much.
const maxPath = 4096

// appendRecord encodes r after b. Layout: kind byte, then by kind: uvarint ino, uvarint-prefixed
// path bytes, uvarint-prefixed path2 bytes, uvarint off, uvarint n.
func appendRecord(b []byte, r record) []byte {
	b = append(b, byte(r.kind))
	switch r.kind {
	case opMkdir, opUnlink, opRmdir:
		b = appendString(b, r.path)
	case opCreate, opLink:
		b = binary.AppendUvarint(b, r.ino)
		b = appendString(b, r.path)
	case opRename:
		b = appendString(b, r.path)
		b = appendString(b, r.path2)
	case opSetSize, opTrim:
		b = binary.AppendUvarint(b, r.ino)
		b = binary.AppendUvarint(b, r.n)
	case opAddExtent:
		b = binary.AppendUvarint(b, r.ino)
		b = binary.AppendUvarint(b, r.off)
		b = binary.AppendUvarint(b, r.n)
	case opAddSpace:
		b = binary.AppendUvarint(b, r.off)
		b = binary.AppendUvarint(b, r.n)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// errRecord is wrapped by every decoding failure of a record inside an entry whose checksum
// matched: it means the journal holds something this build cannot have written (corruption).
var errRecord = errors.New("bad journal record")

// decodeRecords decodes a whole entry payload. It never panics on bad input.
func decodeRecords(p []byte) ([]record, error) {
	var out []record
	for len(p) > 0 {
		r, rest, err := decodeRecord(p)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", len(out), err)
		}
		out = append(out, r)
		p = rest
	}
	return out, nil
}

func decodeRecord(p []byte) (record, []byte, error) {
	r := record{kind: opKind(p[0])}
	d := decoder{p: p[1:]}
	switch r.kind {
	case opMkdir, opUnlink, opRmdir:
		r.path = d.str()
	case opCreate, opLink:
		r.ino = d.uvarint()
		r.path = d.str()
	case opRename:
		r.path = d.str()
		r.path2 = d.str()
	case opSetSize, opTrim:
		r.ino = d.uvarint()
		r.n = d.uvarint()
	case opAddExtent:
		r.ino = d.uvarint()
		r.off = d.uvarint()
		r.n = d.uvarint()
	case opAddSpace:
		r.off = d.uvarint()
		r.n = d.uvarint()
	default:
		return record{}, nil, fmt.Errorf("unknown kind %d: %w", p[0], errRecord)
	}
	if d.err != nil {
		return record{}, nil, fmt.Errorf("%s: %w", r.kind, d.err)
	}
	return r, d.p, nil
}

type decoder struct {
	p   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.p)
	if n <= 0 || (n > 1 && d.p[n-1] == 0) { // a zero last byte: not the shortest encoding
		d.err = fmt.Errorf("truncated or overlong varint: %w", errRecord)
		return 0
	}
	d.p = d.p[n:]
	return v
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > maxPath || n > uint64(len(d.p)) {
		d.err = fmt.Errorf("path of %d bytes (at most %d, %d left): %w", n, maxPath, len(d.p), errRecord)
		return ""
	}
	s := string(d.p[:n])
	d.p = d.p[n:]
	return s
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Journal entries. A flush of the journal appends one entry: a header, then the payload (the
// records). Entries are packed one after another from the start of the journal extent, not
// aligned; the block holding the end of the last entry is rewritten by the next flush with the
// same bytes before the new entry (a torn rewrite leaves those bytes as they were). Layout,
// little-endian:
//
//	[0, 4)    magic "CMJ1"
//	[4, 12)   epoch: the journal's epoch, from the superblock (stale entries of an earlier
//	          journal at the same place carry another)
//	[12, 20)  seq: 1 for the first entry of an epoch, then +1 per entry
//	[20, 24)  payload length
//	[24, 28)  crc32c of bytes [0, 24) and of the payload
//	[28, ...) payload
const (
	entryMagic      = "CMJ1"
	entryHeaderSize = 28
)

func appendEntry(b []byte, epoch, seq uint64, payload []byte) []byte {
	var h [entryHeaderSize]byte
	copy(h[:4], entryMagic)
	le := binary.LittleEndian
	le.PutUint64(h[4:], epoch)
	le.PutUint64(h[12:], seq)
	le.PutUint32(h[20:], uint32(len(payload)))
	c := crc32.Update(crc32.Checksum(h[:24], castagnoli), castagnoli, payload)
	le.PutUint32(h[24:], c)
	b = append(b, h[:]...)
	return append(b, payload...)
}

// entryStatus says why decodeEntry stopped.
type entryStatus int

const (
	entryOK      entryStatus = iota
	entryEnd                 // no entry of this epoch and seq here: the journal's end
	entryPartial             // the header is ours but the entry runs past the data given
)

// decodeEntry reads the entry at the start of p if it is a valid entry of epoch with sequence
// number seq. Anything else (zeros, stale entries, a torn entry whose checksum fails) is the end
// of the journal. It never panics on bad input.
func decodeEntry(p []byte, epoch, seq uint64) (payload []byte, size int, st entryStatus) {
	if len(p) < entryHeaderSize || string(p[:4]) != entryMagic {
		return nil, 0, entryEnd
	}
	le := binary.LittleEndian
	if le.Uint64(p[4:]) != epoch || le.Uint64(p[12:]) != seq {
		return nil, 0, entryEnd
	}
	n := int(le.Uint32(p[20:]))
	if n > len(p)-entryHeaderSize {
		return nil, 0, entryPartial
	}
	payload = p[entryHeaderSize : entryHeaderSize+n]
	c := crc32.Update(crc32.Checksum(p[:24], castagnoli), castagnoli, payload)
	if c != le.Uint32(p[24:]) {
		return nil, 0, entryEnd
	}
	return payload, entryHeaderSize + n, entryOK
}
