package memstore

import "maps"

// chunkSize is the unit in which an object's data is stored and space is counted, like the
// engine's allocation unit: a chunk that was never written, or was zeroed or truncated away as a
// whole, takes no space and reads as zeros.
const chunkSize = 4096

// data is an object's sparse byte contents: chunk index -> chunkSize bytes. Chunks are never
// changed in place (a write replaces them), so copies of an object may share them.
type data struct {
	size   int64
	chunks map[int64][]byte
}

func (d data) clone() data { return data{size: d.size, chunks: maps.Clone(d.chunks)} }

// used is the space the data takes.
func (d data) used() int64 { return int64(len(d.chunks)) * chunkSize }

// write copies p to off, extending the size to its end, and returns the space it added. An empty
// p changes nothing. off+len(p) does not overflow.
func (d *data) write(off int64, p []byte) int64 {
	if len(p) == 0 {
		return 0
	}
	before := d.used()
	for len(p) > 0 {
		i, in := off/chunkSize, off%chunkSize
		n := min(int64(len(p)), chunkSize-in)
		c := make([]byte, chunkSize)
		copy(c, d.chunks[i])
		copy(c[in:], p[:n])
		if d.chunks == nil {
			d.chunks = map[int64][]byte{}
		}
		d.chunks[i] = c
		off, p = off+n, p[n:]
	}
	d.size = max(d.size, off)
	return d.used() - before
}

// zero makes [off, off+length) read as zeros, freeing whole chunks, and returns the space it
// freed (<= 0). It does not change the size.
func (d *data) zero(off, length int64) int64 {
	before := d.used()
	end := off + length
	for i := range d.chunks {
		lo, hi := i*chunkSize, (i+1)*chunkSize
		if hi <= off || lo >= end {
			continue
		}
		if lo >= off && hi <= end {
			delete(d.chunks, i)
			continue
		}
		c := append([]byte(nil), d.chunks[i]...)
		clear(c[max(off, lo)-lo : min(end, hi)-lo])
		d.chunks[i] = c
	}
	return d.used() - before
}

// truncate sets the size; bytes past a smaller size are dropped so they read as zeros if the
// object grows again. It returns the change in space.
func (d *data) truncate(size int64) int64 {
	var delta int64
	if size < d.size {
		delta = d.zero(size, d.size-size)
	}
	d.size = size
	return delta
}

// read returns the bytes of [off, off+length) that lie below the size.
func (d data) read(off, length int64) []byte {
	if off >= d.size {
		return []byte{}
	}
	out := make([]byte, min(length, d.size-off))
	d.readInto(off, out)
	return out
}

// readInto fills p with the bytes of [off, off+len(p)) that lie below the size (holes as zeros)
// and returns how many.
func (d data) readInto(off int64, p []byte) int {
	if off >= d.size {
		return 0
	}
	end := off + min(int64(len(p)), d.size-off)
	for pos := off; pos < end; {
		i, in := pos/chunkSize, pos%chunkSize
		n := min(end-pos, chunkSize-in)
		if c, ok := d.chunks[i]; ok {
			copy(p[pos-off:], c[in:in+n])
		} else {
			clear(p[pos-off : pos-off+n])
		}
		pos += n
	}
	return int(end - off)
}
