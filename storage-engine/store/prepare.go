package store

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cobaltstore/cobalt/storage-engine/alloc"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/onode"
)

// Prepared writes.
//
// The whole allocation units a large write covers do not depend on the object's current contents,
// so Commit writes them before the transaction joins the commit queue, in the caller's goroutine:
// it allocates new space, writes the data there and computes the checksums. Many callers thus
// write in parallel with each other and with the group being committed, and the committer only
// maps the prepared extents (and handles the partial head and tail units itself). The group's
// device flush, which precedes its KV commit, makes prepared data durable like any other.
//
// Prepared space belongs to its transaction until the transaction commits (then the onode
// references it) or fails for good (then it is released); a group that is staged again after a
// neighbor failed reuses it.

// prepared is the data of one write operation already on the device.
type prepared struct {
	at    uint64 // logical offset of the first prepared byte (unit aligned)
	exts  []alloc.Extent
	bufs  [][]byte   // data of each extent
	csums [][]uint32 // checksums of each extent
}

func (p *prepared) length() uint64 {
	var n uint64
	for _, e := range p.exts {
		n += uint64(e.Length)
	}
	return n
}

// minPrepare is the smallest whole-unit span worth preparing outside the committer.
func (s *Store) minPrepare() uint64 {
	return max(uint64(max(s.opts.PreferDeferredSize, 0)), s.unit)
}

// prepare writes the whole units of txn's large writes to new space. It returns the prepared data
// by op index; on error nothing stays allocated.
func (s *Store) prepare(txn *Transaction) (map[int]*prepared, error) {
	var preps map[int]*prepared
	for i, o := range txn.ops {
		if o.kind != opWrite || uint64(len(o.data)) < s.minPrepare() {
			continue
		}
		a, b := alignUp(o.off, s.unit), alignDown(o.off+o.length, s.unit)
		if b <= a || b-a < s.minPrepare() {
			continue
		}
		p, err := s.prepareRange(o.data[a-o.off:b-o.off], o.sumsAt(a-o.off, s.csumBlock))
		if err != nil {
			s.releasePrepared(preps)
			if errors.Is(err, ErrNoSpace) {
				// Let staging report it with the transaction's context (it may also free space first).
				return nil, nil
			}
			return nil, fmt.Errorf("write %s/%s at %d: %w", o.c, o.o, o.off, err)
		}
		p.at = a
		if preps == nil {
			preps = map[int]*prepared{}
		}
		preps[i] = p
	}
	return preps, nil
}

// prepareRange allocates space for data (unit aligned), writes it there and checksums it. sums,
// when not nil, are the checksums of data's blocks already computed (op.sumsAt).
func (s *Store) prepareRange(data []byte, sums []uint32) (*prepared, error) {
	n := uint64(len(data))
	exts, err := s.alloc.Allocate(int64(n))
	if err != nil {
		if free := s.alloc.Free(); free < int64(n) {
			return nil, fmt.Errorf("allocate %d bytes (%d free): %w: %w", n, free, ErrNoSpace, err)
		}
		return nil, fmt.Errorf("allocate %d bytes: %w", n, err)
	}
	buf := data
	if !blockdev.IsAligned(buf, blockdev.Alignment) {
		buf = blockdev.AlignedBuffer(len(data))
		copy(buf, data)
	}
	p := &prepared{exts: exts}
	pos := uint64(0)
	var wg sync.WaitGroup
	errs := make([]error, len(exts))
	for i, x := range exts {
		piece := buf[pos : pos+uint64(x.Length)]
		pos += uint64(x.Length)
		var cs []uint32
		if lo, hi := (pos-uint64(x.Length))/s.csumBlock, pos/s.csumBlock; sums != nil {
			cs = sums[lo:hi:hi]
		} else {
			cs = make([]uint32, hi-lo)
			for j := range cs {
				cs[j] = checksum(piece[uint64(j)*s.csumBlock : uint64(j+1)*s.csumBlock])
			}
		}
		p.bufs = append(p.bufs, piece)
		p.csums = append(p.csums, cs)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.dev.WriteAt(piece, x.Offset); err != nil {
				errs[i] = fmt.Errorf("write %d bytes at device offset %d: %w", len(piece), x.Offset, err)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		if rerr := s.alloc.Release(exts); rerr != nil {
			s.m.allocErrors.Add(1)
		}
		return nil, err
	}
	s.m.preparedBytes.Add(int64(n))
	return p, nil
}

// releasePrepared returns the space of prepared writes whose transaction did not commit.
func (s *Store) releasePrepared(preps map[int]*prepared) {
	for _, p := range preps {
		if err := s.alloc.Release(p.exts); err != nil {
			s.m.allocErrors.Add(1)
		}
	}
}

// writePrepared applies a write whose whole units are prepared: the partial head and tail go
// through the normal write path, the middle is remapped to the prepared extents.
func (g *group) writePrepared(k OnodeKey, off uint64, data []byte, p *prepared) error {
	o, err := g.mutOnode(k, true)
	if err != nil {
		return err
	}
	end := off + uint64(len(data))
	a, b := p.at, p.at+p.length()
	if off < a {
		if err := g.writeData(k, o, off, data[:a-off]); err != nil {
			return err
		}
	}
	if b < end {
		if err := g.writeData(k, o, b, data[b-off:]); err != nil {
			return err
		}
	}
	for _, r := range o.Punch(a, b-a, g.s.csumBlock) {
		g.deref(r)
	}
	at := a
	for i, x := range p.exts {
		g.prepared = append(g.prepared, preparedRange{phys: uint64(x.Offset), buf: p.bufs[i]})
		o.Insert(onode.Extent{Logical: at, Phys: uint64(x.Offset), Length: uint64(x.Length), Csums: append([]uint32(nil), p.csums[i]...)})
		at += uint64(x.Length)
	}
	g.needFlush = true
	if end > o.Size {
		g.setSize(o, end)
	}
	return nil
}
