package metafs

import (
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/cobaltstore/cobalt/storage-engine/alloc"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// file is an open handle on an inode. Its position (for Read and Write) is its own; data, size
// and space belong to the inode, shared by every handle.
type file struct {
	fs       *FS
	n        *inode
	name     string
	writable bool
	pos      int64 // used by Read and Write only; pebble does not share a handle between goroutines for them
	closed   bool
}

var _ vfs.File = (*file)(nil)

func (n *inode) info(name string) fileInfo {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return fileInfo{name: name, size: n.size, modTime: n.modTime}
}

func (f *file) Stat() (vfs.FileInfo, error) { return f.n.info(path.Base(f.name)), nil }
func (f *file) Fd() uintptr                 { return vfs.InvalidFd }

// Prefetch does nothing: reads go to the device as they come.
func (f *file) Prefetch(int64, int64) error { return nil }

// Close releases the handle, writing buffered data out (not durably). A file closed after writing
// gives back the space it was allocated ahead of its size (trimLocked). An inode that lost every
// name is freed when its last handle closes.
func (f *file) Close() error {
	if f.closed {
		return pathErr("close", f.name, ErrClosed)
	}
	f.closed = true
	var err error
	if f.writable {
		f.n.mu.Lock()
		err = f.fs.writeOutLocked(f.n, true)
		if err == nil {
			// Everything is on the device: readers no longer need the buffer.
			f.n.tail, f.n.tailLen, f.n.tailWritten = nil, 0, 0
			if !isWAL(f.name) {
				err = f.fs.trim(f.n)
			}
		}
		f.n.mu.Unlock()
	}
	fs := f.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f.n.opens--
	if f.n.opens == 0 && f.n.nlink == 0 {
		if _, ok := fs.mu.st.inodes[f.n.ino]; ok {
			fs.freeLocked(f.n)
		}
	}
	if err != nil {
		return pathErr("close", f.name, err)
	}
	return nil
}

func (f *file) Read(p []byte) (int, error) {
	n, err := f.ReadAt(p, f.pos)
	f.pos += int64(n)
	return n, err
}

// ReadAt reads from the device, and from the data still buffered in memory.
func (f *file) ReadAt(p []byte, off int64) (int, error) {
	if f.closed {
		return 0, pathErr("read", f.name, ErrClosed)
	}
	if off < 0 {
		return 0, pathErr("read", f.name, fmt.Errorf("negative offset %d: %w", off, ErrInvalid))
	}
	n := f.n
	n.mu.RLock()
	defer n.mu.RUnlock()
	if off >= n.size {
		return 0, io.EOF
	}
	want := min(int64(len(p)), n.size-off)
	done := int64(0)
	// The part below the tail comes from the device.
	devEnd := off + want
	if n.tailLen > 0 {
		devEnd = min(devEnd, n.tailOff)
	}
	if devEnd > off {
		if err := f.fs.readData(n, p[:devEnd-off], off); err != nil {
			return 0, pathErr("read", f.name, err)
		}
		done = devEnd - off
	}
	if done < want {
		rel := off + done - n.tailOff
		if k := min(want-done, int64(n.tailLen)-rel); k > 0 {
			copy(p[done:done+k], n.tail[rel:])
			done += k
		}
	}
	if done < want {
		// Past the tail's end the file's bytes are on the device.
		if err := f.fs.readData(n, p[done:want], off+done); err != nil {
			return 0, pathErr("read", f.name, err)
		}
		done = want
	}
	if done < int64(len(p)) {
		return int(done), io.EOF
	}
	return int(done), nil
}

// readData reads file bytes [off, off+len(p)) from the device, through an aligned buffer.
// REQUIRES: n.mu (read or write).
func (fs *FS) readData(n *inode, p []byte, off int64) error {
	start := alignDown(off, fs.bs)
	end := alignUp(off+int64(len(p)), fs.bs)
	buf := blockdev.AlignedBuffer(int(end - start))
	if err := fs.mapIO(n, buf, start, false); err != nil {
		return err
	}
	copy(p, buf[off-start:])
	return nil
}

// mapIO reads or writes the aligned buffer buf at file offset off (block-aligned), split along
// the inode's extents. REQUIRES: n.mu.
//
// A write is refused once the file system failed, and a write that fails fails it: a file's
// data the caller was told did not reach the device must not reach it later (written out by a
// retry or a Close and made durable by another file's flush), because a WAL is replayed up to
// its first invalid chunk, so a record written late would bring back a commit that failed.
func (fs *FS) mapIO(n *inode, buf []byte, off int64, write bool) error {
	if write {
		fs.mu.Lock()
		err := fs.checkLocked()
		fs.mu.Unlock()
		if err != nil {
			return err
		}
	}
	var base int64 // file offset of the current extent
	for _, e := range n.extents {
		if len(buf) == 0 {
			return nil
		}
		if off < base+e.Length {
			rel := off - base
			k := min(int64(len(buf)), e.Length-rel)
			var err error
			if write {
				_, err = fs.dev.WriteAt(buf[:k], e.Offset+rel)
			} else {
				_, err = fs.dev.ReadAt(buf[:k], e.Offset+rel)
			}
			if err != nil {
				if write {
					return fs.fail(fmt.Errorf("write file data at %d: %w", e.Offset+rel, err))
				}
				return err
			}
			buf, off = buf[k:], off+k
		}
		base += e.Length
	}
	if len(buf) > 0 {
		return fmt.Errorf("file offset %d is past the %d allocated bytes: %w", off, n.allocated, ErrCorrupt)
	}
	return nil
}

func (f *file) Write(p []byte) (int, error) {
	n, err := f.WriteAt(p, f.pos)
	f.pos += int64(n)
	return n, err
}

// WriteAt buffers p in the inode's tail when it continues (or rewrites) the tail; otherwise the
// tail is written out first and a new one starts at p's block.
func (f *file) WriteAt(p []byte, off int64) (int, error) {
	if f.closed {
		return 0, pathErr("write", f.name, ErrClosed)
	}
	if !f.writable {
		return 0, pathErr("write", f.name, fmt.Errorf("file opened read-only: %w", os.ErrPermission))
	}
	if off < 0 {
		return 0, pathErr("write", f.name, fmt.Errorf("negative offset %d: %w", off, ErrInvalid))
	}
	n := f.n
	n.mu.Lock()
	defer n.mu.Unlock()
	written := 0
	for len(p) > 0 {
		if n.tail == nil || off < n.tailOff || off > n.tailOff+int64(n.tailLen) {
			if err := f.fs.startTailLocked(n, off); err != nil {
				return written, pathErr("write", f.name, err)
			}
		}
		rel := int(off - n.tailOff)
		if rel == len(n.tail) {
			// The buffer is full: write its whole blocks out and keep the partial one.
			if err := f.fs.writeOutLocked(n, false); err != nil {
				return written, pathErr("write", f.name, err)
			}
			continue
		}
		k := copy(n.tail[rel:], p)
		if rel < n.tailWritten {
			n.tailWritten = int(alignDown(int64(rel), f.fs.bs))
		}
		n.tailLen = max(n.tailLen, rel+k)
		p, off, written = p[k:], off+int64(k), written+k
		n.size = max(n.size, off)
	}
	n.modTime = time.Now()
	return written, nil
}

// startTailLocked writes the current tail out and starts an empty one at the block holding off,
// loading that block's bytes below off (and up to the file's size) from the device.
// REQUIRES: n.mu.
func (fs *FS) startTailLocked(n *inode, off int64) error {
	if err := fs.writeOutLocked(n, true); err != nil {
		return err
	}
	if n.tail == nil {
		n.tail = blockdev.AlignedBuffer(maxTail)
	}
	n.tailOff = alignDown(off, fs.bs)
	n.tailLen, n.tailWritten = 0, 0
	if have := min(n.size, n.tailOff+fs.bs) - n.tailOff; have > 0 {
		if err := fs.mapIO(n, n.tail[:fs.bs], n.tailOff, false); err != nil {
			return err
		}
		n.tailLen = int(have)
		n.tailWritten = int(fs.bs) // the block is on the device as loaded
	}
	if gap := off - n.tailOff; gap > int64(n.tailLen) {
		clear(n.tail[n.tailLen:gap])
		n.tailLen = int(gap)
		n.tailWritten = 0
	}
	return nil
}

// writeOutLocked writes the tail's unwritten blocks to the device (allocating space as needed).
// With all, the partial last block is written too (zero-padded, or completed from the device
// when the file continues past it) and the tail then keeps only that block; otherwise only whole
// blocks are written and the partial one moves to the buffer's start. REQUIRES: n.mu.
func (fs *FS) writeOutLocked(n *inode, all bool) error {
	if n.tailLen == 0 {
		return nil
	}
	end := int64(n.tailLen)
	full := alignDown(end, fs.bs)
	writeEnd := full
	if all {
		writeEnd = alignUp(end, fs.bs)
		if writeEnd > end {
			tailEnd := n.tailOff + end
			if n.size > tailEnd {
				// The file continues inside this block: complete it from the device.
				blk := n.tailOff + full
				tmp := blockdev.AlignedBuffer(int(fs.bs))
				if err := fs.mapIO(n, tmp, blk, false); err != nil {
					return err
				}
				copy(n.tail[end:writeEnd], tmp[end-full:])
			} else {
				clear(n.tail[end:writeEnd])
			}
		}
	}
	from := alignDown(int64(n.tailWritten), fs.bs)
	if writeEnd > from {
		if err := fs.ensureAllocated(n, n.tailOff+writeEnd); err != nil {
			return err
		}
		if err := fs.mapIO(n, n.tail[from:writeEnd], n.tailOff+from, true); err != nil {
			return err
		}
	}
	// Keep the last partial block (or nothing when the tail ends on a block boundary).
	keepFrom := full
	if keepFrom == end && end > 0 {
		n.tailOff += end
		n.tailLen, n.tailWritten = 0, 0
		return nil
	}
	copy(n.tail, n.tail[keepFrom:end])
	n.tailOff += keepFrom
	n.tailLen = int(end - keepFrom)
	if all {
		n.tailWritten = n.tailLen
	} else {
		n.tailWritten = 0
	}
	return nil
}

// ensureAllocated gives the inode extents up to file offset end, growing by more than needed
// (up to maxGrowth) so a growing file gets few, long extents. When the region is full it makes
// the journal durable (releasing space freed by pending records) and tries once more, and then,
// with a grower set (SetGrower), asks it for space and tries a last time. REQUIRES: n.mu.
func (fs *FS) ensureAllocated(n *inode, end int64) error {
	for attempt := 0; ; attempt++ {
		err := fs.allocate(n, end)
		if err == nil || !errIsNoSpace(err) || attempt > 1 {
			return err
		}
		if attempt == 0 {
			if err := fs.syncJournal(^uint64(0)); err != nil {
				return err
			}
			continue
		}
		grow := fs.grower.Load()
		if grow == nil {
			return err
		}
		if gerr := (*grow)(alignUp(end-n.allocated, fs.unit)); gerr != nil {
			return fmt.Errorf("%w (and no more space: %w)", err, gerr)
		}
	}
}

// SetGrower sets the function that allocations which find the file system full call, with the
// bytes they need, before they fail: it may give the file system space (AddSpace, from the
// caller's own allocator) and return nil, and the allocation is tried once more. It runs in
// whichever goroutine writes the file (pebble's WAL writer, a flush or a compaction), holding
// that file's lock and none of the file system's, so it must not wait for anything that waits
// for the file system's I/O. Nil removes it.
func (fs *FS) SetGrower(grow func(need int64) error) {
	if grow == nil {
		fs.grower.Store(nil)
		return
	}
	fs.grower.Store(&grow)
}

func (fs *FS) allocate(n *inode, end int64) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.checkLocked(); err != nil {
		return err
	}
	need := end - n.allocated
	if need <= 0 {
		return nil
	}
	need = alignUp(need, fs.unit)
	want := max(need, min(alignUp(n.allocated, fs.unit), maxGrowth))
	// Room for compacting the journal (with the new extent records) stays free.
	reserve := fs.reserveLocked(4 * (1 + 3*10))
	free := fs.mu.alloc.Free()
	if free-want < reserve {
		want = need
	}
	var exts []Extent
	var err error
	if free-want < reserve {
		err = alloc.ErrNoSpace
	} else {
		exts, err = fs.mu.alloc.Allocate(want)
		if err != nil && want > need {
			exts, err = fs.mu.alloc.Allocate(need)
		}
	}
	if err != nil {
		if errIsNoSpace(err) {
			return fmt.Errorf("%d bytes for inode %d (%d free): %w: %w", need, n.ino, fs.mu.alloc.Free(), ErrNoSpace, err)
		}
		return err
	}
	for _, e := range exts {
		e.Offset += fs.region.Offset
		if _, err := fs.logLocked(record{kind: opAddExtent, ino: n.ino, off: uint64(e.Offset), n: uint64(e.Length)}); err != nil {
			return err
		}
	}
	n.lastRec = fs.mu.recs
	return nil
}

// trim frees the space n was allocated past its size, rounded up to the unit: a growing file is
// given up to twice what it holds (ensureAllocated), and a table written once and closed would
// otherwise keep that space for its whole life. The record is queued, not flushed; the space is
// allocatable once it is durable. WAL files keep their space: it is their recorded size. A file
// whose size is not recorded yet keeps all it has written. REQUIRES: n.mu.
func (fs *FS) trim(n *inode) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.checkLocked() != nil || n.nlink == 0 {
		return nil // nothing more is recorded; an unlinked file frees everything at its last close
	}
	keep := alignUp(max(n.size, n.journaled), fs.unit)
	if keep >= n.allocated {
		return nil
	}
	_, freed := cutExtents(n.extents, keep)
	if _, err := fs.logLocked(record{kind: opTrim, ino: n.ino, n: uint64(keep)}); err != nil {
		return fmt.Errorf("trim to %d bytes: %w", keep, err)
	}
	fs.mu.pendingFree = append(fs.mu.pendingFree, freed...)
	return nil
}

// Preallocate gives the file space up to offset+length.
func (f *file) Preallocate(offset, length int64) error {
	if f.closed {
		return pathErr("preallocate", f.name, ErrClosed)
	}
	f.n.mu.Lock()
	defer f.n.mu.Unlock()
	if err := f.fs.ensureAllocated(f.n, offset+length); err != nil {
		return pathErr("preallocate", f.name, err)
	}
	return nil
}

// Sync makes the file's data and size durable: the buffered data is written and the device
// flushed, then, if the size or the space changed since the journal last recorded them, a
// journal entry records them (a second flush). A file that is rewritten inside its recorded size
// costs one flush. A sync that succeeds is counted in FS.SyncStats.
func (f *file) Sync() error {
	if f.closed {
		return pathErr("sync", f.name, ErrClosed)
	}
	n := f.n
	fs := f.fs
	n.mu.Lock()
	defer n.mu.Unlock()
	start := time.Now()
	if err := fs.writeOutLocked(n, true); err != nil {
		return pathErr("sync", f.name, err)
	}
	written := time.Now()
	if err := fs.dev.Flush(); err != nil {
		return pathErr("sync", f.name, fs.fail(fmt.Errorf("flush file data: %w", err)))
	}
	flushed := time.Now()
	fs.mu.Lock()
	if n.size > n.journaled {
		// A WAL is recorded as long as its space (pebble reads a WAL up to its first invalid
		// chunk, and takes an unclean end of the newest WAL for the end of the log), so the
		// syncs that follow, until it needs more space, write no record: one flush each.
		recorded, live := n.size, n.size
		if isWAL(f.name) {
			recorded = n.allocated
		}
		if _, err := fs.logLocked(record{kind: opSetSize, ino: n.ino, n: uint64(recorded)}); err != nil {
			fs.mu.Unlock()
			return pathErr("sync", f.name, err)
		}
		n.size = live // applying the record set the size to the recorded one
		n.lastRec = fs.mu.recs
	}
	target, durable := n.lastRec, fs.mu.durable
	fs.mu.Unlock()
	journaled := target > durable
	if journaled {
		if err := fs.syncJournal(target); err != nil {
			return pathErr("sync", f.name, err)
		}
	}
	fs.syncs.observe(written.Sub(start), flushed.Sub(written), time.Since(flushed), journaled)
	return nil
}

// SyncData is Sync.
func (f *file) SyncData() error { return f.Sync() }

// SyncTo writes the buffered data out without a flush; it reports fullSync false, which promises
// nothing about durability (pebble calls it to spread writes, then Sync for durability).
func (f *file) SyncTo(int64) (bool, error) {
	if f.closed {
		return false, pathErr("sync", f.name, ErrClosed)
	}
	f.n.mu.Lock()
	defer f.n.mu.Unlock()
	if err := f.fs.writeOutLocked(f.n, false); err != nil {
		return false, pathErr("sync", f.name, err)
	}
	return false, nil
}

// dir is an open directory: Sync makes every change made so far durable.
type dir struct {
	fs   *FS
	name string
}

var _ vfs.File = (*dir)(nil)

func (d *dir) Close() error { return nil }
func (d *dir) Sync() error {
	if err := d.fs.syncJournal(^uint64(0)); err != nil {
		return pathErr("sync", d.name, err)
	}
	return nil
}
func (d *dir) SyncData() error             { return d.Sync() }
func (d *dir) SyncTo(int64) (bool, error)  { return true, d.Sync() }
func (d *dir) Stat() (vfs.FileInfo, error) { return fileInfo{name: path.Base(d.name), dir: true}, nil }
func (d *dir) Read([]byte) (int, error)    { return 0, d.unsupported("read") }
func (d *dir) ReadAt([]byte, int64) (int, error) {
	return 0, d.unsupported("read")
}
func (d *dir) Write([]byte) (int, error)          { return 0, d.unsupported("write") }
func (d *dir) WriteAt([]byte, int64) (int, error) { return 0, d.unsupported("write") }
func (d *dir) Preallocate(int64, int64) error     { return d.unsupported("preallocate") }
func (d *dir) Prefetch(int64, int64) error        { return nil }
func (d *dir) Fd() uintptr                        { return vfs.InvalidFd }
func (d *dir) unsupported(op string) error {
	return pathErr(op, d.name, fmt.Errorf("is a directory: %w", ErrUnsupported))
}

// isWAL reports whether name is one of pebble's write-ahead log files (NNNNNN.log).
func isWAL(name string) bool { return strings.HasSuffix(name, ".log") }
