package metafs

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
	"time"
)

// inode is a file: its extents on the device, its size and the data it has not written out yet.
//
// Locking: extents, allocated and journaled are changed with both the inode's mu and the file
// system's mu held, so either lock suffices to read them. nlink and opens are guarded by the file
// system's mu alone; size, tail and modTime by the inode's mu alone.
type inode struct {
	ino uint64

	mu sync.RWMutex
	// size is the file's length as its handles see it (written data included).
	size int64
	// tail buffers written data for the file bytes [tailOff, tailOff+tailLen): tailOff is
	// block-aligned; bytes below tailWritten (relative) have been written to the device. After a
	// write-out the last partial block stays here, so appends complete it in memory.
	tail        []byte
	tailOff     int64
	tailLen     int
	tailWritten int
	modTime     time.Time

	extents   []Extent // device extents in file order
	allocated int64    // total length of extents
	journaled int64    // size in the last SetSize record appended for this inode (0 if none)
	lastRec   uint64   // the record counter after the last record about this inode

	nlink int // names linking this inode
	opens int // open handles
}

// state is the file system's metadata in memory: what replaying the journal rebuilds.
type state struct {
	dirs    map[string]struct{} // cleaned absolute paths; "/" always present
	names   map[string]uint64   // file path -> ino
	inodes  map[uint64]*inode
	nextIno uint64
	// space holds the extents added with AddSpace (device bytes), in the order added: each
	// whole units from the region's start, after the region, inside the device, disjoint.
	space []Extent

	// The bounds space records are checked against, fixed when the state is made.
	region  Extent
	unit    int64
	devSize int64
}

// newState returns the empty state of a file system in region, with unit-sized allocations, on
// a device of devSize bytes.
func newState(region Extent, unit, devSize int64) *state {
	return &state{dirs: map[string]struct{}{"/": {}}, names: map[string]uint64{}, inodes: map[uint64]*inode{}, nextIno: 1,
		region: region, unit: unit, devSize: devSize}
}

// checkSpace says why e cannot be added to the file system's space, or returns nil: it must be
// whole units from the region's start, lie after the region and inside the device, and not
// overlap space added before.
func (s *state) checkSpace(e Extent) error {
	switch {
	case e.Length <= 0 || e.End() < e.Offset:
		return fmt.Errorf("extent [%d, +%d) is empty or wraps around", e.Offset, e.Length)
	case e.Offset < s.region.End():
		return fmt.Errorf("extent [%d, +%d) overlaps or precedes the region %v", e.Offset, e.Length, s.region)
	case (e.Offset-s.region.Offset)%s.unit != 0 || e.Length%s.unit != 0:
		return fmt.Errorf("extent [%d, +%d) is not whole %d-byte units from the region's start %d", e.Offset, e.Length, s.unit, s.region.Offset)
	case e.End() > s.devSize:
		return fmt.Errorf("extent [%d, +%d) ends past the %d-byte device", e.Offset, e.Length, s.devSize)
	}
	for _, x := range s.space {
		if e.Offset < x.End() && x.Offset < e.End() {
			return fmt.Errorf("extent [%d, +%d) overlaps added space [%d, +%d)", e.Offset, e.Length, x.Offset, x.Length)
		}
	}
	return nil
}

// clean turns a pebble path into the absolute, cleaned form the state uses.
func clean(name string) string { return path.Clean("/" + name) }

// apply changes the state by one record, checking that it makes sense for the state as it is.
// Freed inodes (no names left) are returned so the caller can release their space.
func (s *state) apply(r record) (freed *inode, err error) {
	switch r.kind {
	case opMkdir:
		p := clean(r.path)
		for d := p; d != "/"; d = path.Dir(d) {
			if _, isFile := s.names[d]; isFile {
				return nil, fmt.Errorf("mkdir %s: %s is a file", p, d)
			}
		}
		for d := p; d != "/"; d = path.Dir(d) {
			s.dirs[d] = struct{}{}
		}
	case opRmdir:
		p := clean(r.path)
		if _, ok := s.dirs[p]; !ok || p == "/" {
			return nil, fmt.Errorf("rmdir %s: no such directory", p)
		}
		if s.hasChildren(p) {
			return nil, fmt.Errorf("rmdir %s: not empty", p)
		}
		delete(s.dirs, p)
	case opCreate:
		if r.ino == 0 {
			return nil, fmt.Errorf("create %s: inode 0", r.path)
		}
		if _, ok := s.inodes[r.ino]; ok {
			return nil, fmt.Errorf("create %s: inode %d exists", r.path, r.ino)
		}
		s.inodes[r.ino] = &inode{ino: r.ino}
		s.nextIno = max(s.nextIno, r.ino+1)
		return s.link(r.ino, clean(r.path))
	case opLink:
		if _, ok := s.inodes[r.ino]; !ok {
			return nil, fmt.Errorf("link %s: no inode %d", r.path, r.ino)
		}
		return s.link(r.ino, clean(r.path))
	case opUnlink:
		return s.unlink(clean(r.path))
	case opRename:
		from, to := clean(r.path), clean(r.path2)
		ino, ok := s.names[from]
		if !ok {
			return nil, fmt.Errorf("rename %s: no such file", from)
		}
		if from == to {
			return nil, nil
		}
		freed, err := s.link(ino, to)
		if err != nil {
			return nil, err
		}
		if _, err := s.unlink(from); err != nil {
			return nil, err
		}
		return freed, nil
	case opSetSize:
		n, ok := s.inodes[r.ino]
		if !ok {
			return nil, fmt.Errorf("setsize: no inode %d", r.ino)
		}
		if int64(r.n) < 0 || int64(r.n) > n.allocated {
			return nil, fmt.Errorf("setsize inode %d: size %d beyond its %d allocated bytes", r.ino, r.n, n.allocated)
		}
		n.journaled, n.size = int64(r.n), int64(r.n)
	case opAddExtent:
		n, ok := s.inodes[r.ino]
		if !ok {
			return nil, fmt.Errorf("addextent: no inode %d", r.ino)
		}
		e := Extent{Offset: int64(r.off), Length: int64(r.n)}
		if e.Offset < 0 || e.Length <= 0 || e.End() < e.Offset {
			return nil, fmt.Errorf("addextent inode %d: bad extent %v", r.ino, e)
		}
		n.extents = appendExtent(n.extents, e)
		n.allocated += e.Length
	case opAddSpace:
		e := Extent{Offset: int64(r.off), Length: int64(r.n)}
		if err := s.checkSpace(e); err != nil {
			return nil, fmt.Errorf("addspace: %w", err)
		}
		s.space = append(s.space, e)
	case opTrim:
		n, ok := s.inodes[r.ino]
		if !ok {
			return nil, fmt.Errorf("trim: no inode %d", r.ino)
		}
		keep := int64(r.n)
		if keep < 0 || keep%s.unit != 0 || keep > n.allocated || keep < n.journaled {
			return nil, fmt.Errorf("trim inode %d to %d bytes: not whole %d-byte units between its recorded size %d and its %d allocated bytes",
				r.ino, keep, s.unit, n.journaled, n.allocated)
		}
		n.extents, _ = cutExtents(n.extents, keep)
		n.allocated = keep
	default:
		return nil, fmt.Errorf("unknown record kind %s", r.kind)
	}
	return nil, nil
}

// cutExtents splits a file's extents after its first keep bytes: kept (a new slice) and freed.
func cutExtents(exts []Extent, keep int64) (kept, freed []Extent) {
	for _, e := range exts {
		switch {
		case keep >= e.Length:
			kept = append(kept, e)
			keep -= e.Length
		case keep > 0:
			kept = append(kept, Extent{Offset: e.Offset, Length: keep})
			freed = append(freed, Extent{Offset: e.Offset + keep, Length: e.Length - keep})
			keep = 0
		default:
			freed = append(freed, e)
		}
	}
	return kept, freed
}

// appendExtent appends e, merging it into the last extent when they are contiguous.
func appendExtent(exts []Extent, e Extent) []Extent {
	if k := len(exts); k > 0 && exts[k-1].End() == e.Offset {
		exts[k-1].Length += e.Length
		return exts
	}
	return append(exts, e)
}

// link names ino at p, replacing a file there. It returns the inode that lost its last name.
func (s *state) link(ino uint64, p string) (*inode, error) {
	if _, ok := s.dirs[path.Dir(p)]; !ok {
		return nil, fmt.Errorf("link %s: no directory %s", p, path.Dir(p))
	}
	if _, ok := s.dirs[p]; ok {
		return nil, fmt.Errorf("link %s: is a directory", p)
	}
	var freed *inode
	if old, ok := s.names[p]; ok {
		if old == ino {
			return nil, nil
		}
		var err error
		if freed, err = s.unlink(p); err != nil {
			return nil, err
		}
	}
	s.names[p] = ino
	s.inodes[ino].nlink++
	return freed, nil
}

// unlink removes the name p; the inode is returned when it has no names left.
func (s *state) unlink(p string) (*inode, error) {
	ino, ok := s.names[p]
	if !ok {
		return nil, fmt.Errorf("unlink %s: no such file", p)
	}
	delete(s.names, p)
	n := s.inodes[ino]
	n.nlink--
	if n.nlink == 0 {
		return n, nil
	}
	return nil, nil
}

func (s *state) hasChildren(dir string) bool {
	prefix := strings.TrimSuffix(dir, "/") + "/"
	for p := range s.names {
		if strings.HasPrefix(p, prefix) {
			return true
		}
	}
	for p := range s.dirs {
		if p != dir && strings.HasPrefix(p, prefix) {
			return true
		}
	}
	return false
}

// children returns the base names directly inside dir, sorted.
func (s *state) children(dir string) []string {
	var out []string
	add := func(p string) {
		if p != "/" && path.Dir(p) == dir {
			out = append(out, path.Base(p))
		}
	}
	for p := range s.names {
		add(p)
	}
	for p := range s.dirs {
		add(p)
	}
	slices.Sort(out)
	return out
}

// snapshotBound is an upper bound of len(s.snapshot()), from the worst-case size of each record
// (varints of 10 bytes, path lengths of 2).
func (s *state) snapshotBound() int64 {
	n := int64(len(s.space)) * (1 + 2*10)
	for d := range s.dirs {
		n += 1 + 2 + int64(len(d))
	}
	for p := range s.names {
		n += 1 + 10 + 2 + int64(len(p))
	}
	for _, in := range s.inodes {
		n += int64(len(in.extents))*(1+3*10) + (1 + 2*10)
	}
	return n
}

// snapshot returns records that rebuild the state's durable part from nothing: the added space
// first (so the extents that follow may lie in it), every directory, every named inode with its
// names, extents and journaled size. Inodes with no name (unlinked, still open) are left out:
// after a crash they are gone.
func (s *state) snapshot() []byte {
	var b []byte
	for _, e := range s.space {
		b = appendRecord(b, record{kind: opAddSpace, off: uint64(e.Offset), n: uint64(e.Length)})
	}
	dirs := make([]string, 0, len(s.dirs))
	for d := range s.dirs {
		if d != "/" {
			dirs = append(dirs, d)
		}
	}
	slices.Sort(dirs) // parents before children
	for _, d := range dirs {
		b = appendRecord(b, record{kind: opMkdir, path: d})
	}
	byIno := map[uint64][]string{}
	for p, ino := range s.names {
		byIno[ino] = append(byIno[ino], p)
	}
	inos := make([]uint64, 0, len(byIno))
	for ino := range byIno {
		inos = append(inos, ino)
	}
	slices.Sort(inos)
	for _, ino := range inos {
		names := byIno[ino]
		slices.Sort(names)
		n := s.inodes[ino]
		b = appendRecord(b, record{kind: opCreate, ino: ino, path: names[0]})
		for _, p := range names[1:] {
			b = appendRecord(b, record{kind: opLink, ino: ino, path: p})
		}
		for _, e := range n.extents {
			b = appendRecord(b, record{kind: opAddExtent, ino: ino, off: uint64(e.Offset), n: uint64(e.Length)})
		}
		if n.journaled > 0 {
			b = appendRecord(b, record{kind: opSetSize, ino: ino, n: uint64(n.journaled)})
		}
	}
	return b
}
