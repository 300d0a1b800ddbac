package metafs

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cobaltstore/cobalt/storage-engine/alloc"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// FS is a mounted metafs: a pebble vfs.FS whose files live in a region of a block device. All
// methods are safe for concurrent use.
//
// Lock order: an inode's mu, then flushMu, then mu. No code takes an inode's mu while holding
// flushMu or mu.
type FS struct {
	dev    blockdev.Device
	bs     int64 // device block size
	unit   int64
	region Extent
	log    *slog.Logger
	// grower is SetGrower's function, nil when none.
	grower atomic.Pointer[func(need int64) error]

	// flushMu serializes journal writes, device flushes of the journal and compactions.
	flushMu sync.Mutex
	// syncs counts the file syncs and their time (stats.go).
	syncs syncCounters

	mu struct {
		sync.Mutex
		st    *state
		sb    superblock
		alloc *alloc.ExtentAllocator // region-relative offsets
		// pending holds encoded records not written to the journal yet; recs counts every
		// record ever appended, durable those that are on the device.
		pending []byte
		recs    uint64
		durable uint64
		// pendingFree is space freed by records in pending (or by closing unlinked files): it is
		// released to the allocator once those records are durable.
		pendingFree []Extent
		// journal write position: the next entry's sequence number and its byte offset in the
		// journal, and the block holding that offset as last written.
		seq   uint64
		jpos  int64
		jtail []byte
		locks map[string]struct{}
		// failed is set when a journal write or flush failed: the device may be behind memory.
		failed error
		closed bool
	}
}

var _ vfs.FS = (*FS)(nil)

// logLocked applies r to the state and queues it for the journal. REQUIRES: fs.mu.
func (fs *FS) logLocked(r record) (freed *inode, err error) {
	freed, err = fs.mu.st.apply(r)
	if err != nil {
		return nil, err
	}
	if (r.kind == opSetSize || r.kind == opAddExtent) && fs.mu.st.inodes[r.ino].nlink == 0 {
		// An unlinked file still open: replay drops the inode at its last unlink, so a record
		// about it would not apply. Its space is freed from memory when it is closed.
		return nil, nil
	}
	fs.mu.pending = appendRecord(fs.mu.pending, r)
	fs.mu.recs++
	if freed != nil && freed.opens == 0 {
		fs.freeLocked(freed)
	}
	return freed, nil
}

// freeLocked drops an inode with no names and no open handles; its space is released once the
// records that freed it are durable. REQUIRES: fs.mu.
func (fs *FS) freeLocked(n *inode) {
	delete(fs.mu.st.inodes, n.ino)
	fs.mu.pendingFree = append(fs.mu.pendingFree, n.extents...)
}

// checkLocked returns the error that refuses changes: closed or failed. REQUIRES: fs.mu.
func (fs *FS) checkLocked() error {
	if fs.mu.closed {
		return ErrClosed
	}
	if fs.mu.failed != nil {
		return fmt.Errorf("%w: %w", ErrFailed, fs.mu.failed)
	}
	return nil
}

// nameCost bounds what a new name p adds to a snapshot: its create or link record and an inode.
func nameCost(p string) int64 { return 1 + 10 + 2 + int64(len(p)) + 1 + 2*10 }

func pathErr(op, name string, err error) error { return &os.PathError{Op: op, Path: name, Err: err} }

// Create creates (or truncates, by replacing its inode) the named file for writing.
func (fs *FS) Create(name string, _ vfs.DiskWriteCategory) (vfs.File, error) {
	p := clean(name)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.checkLocked(); err != nil {
		return nil, pathErr("create", name, err)
	}
	if err := fs.parentLocked(p); err != nil {
		return nil, pathErr("create", name, err)
	}
	if _, isDir := fs.mu.st.dirs[p]; isDir {
		return nil, pathErr("create", name, fmt.Errorf("is a directory: %w", ErrInvalid))
	}
	if err := fs.roomLocked(nameCost(p)); err != nil {
		return nil, pathErr("create", name, err)
	}
	ino := fs.mu.st.nextIno
	if _, err := fs.logLocked(record{kind: opCreate, ino: ino, path: p}); err != nil {
		return nil, pathErr("create", name, fmt.Errorf("%w: %w", err, ErrCorrupt))
	}
	n := fs.mu.st.inodes[ino]
	n.lastRec = fs.mu.recs
	n.modTime = time.Now()
	return fs.openLocked(n, p, true), nil
}

// parentLocked checks that p's directory exists. REQUIRES: fs.mu.
func (fs *FS) parentLocked(p string) error {
	if _, ok := fs.mu.st.dirs[path.Dir(p)]; !ok {
		return os.ErrNotExist
	}
	return nil
}

func (fs *FS) openLocked(n *inode, name string, writable bool) *file {
	n.opens++
	return &file{fs: fs, n: n, name: name, writable: writable}
}

// Link gives the file oldname a second name; newname must not exist.
func (fs *FS) Link(oldname, newname string) error {
	from, to := clean(oldname), clean(newname)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.checkLocked(); err != nil {
		return &os.LinkError{Op: "link", Old: oldname, New: newname, Err: err}
	}
	ino, ok := fs.mu.st.names[from]
	if !ok {
		return &os.LinkError{Op: "link", Old: oldname, New: newname, Err: os.ErrNotExist}
	}
	if fs.existsLocked(to) {
		return &os.LinkError{Op: "link", Old: oldname, New: newname, Err: os.ErrExist}
	}
	if err := fs.parentLocked(to); err != nil {
		return &os.LinkError{Op: "link", Old: oldname, New: newname, Err: err}
	}
	if err := fs.roomLocked(nameCost(to)); err != nil {
		return &os.LinkError{Op: "link", Old: oldname, New: newname, Err: err}
	}
	_, err := fs.logLocked(record{kind: opLink, ino: ino, path: to})
	return err
}

func (fs *FS) existsLocked(p string) bool {
	_, isFile := fs.mu.st.names[p]
	_, isDir := fs.mu.st.dirs[p]
	return isFile || isDir
}

// Open opens the named file (or directory) for reading.
func (fs *FS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	p := clean(name)
	fs.mu.Lock()
	if _, isDir := fs.mu.st.dirs[p]; isDir {
		fs.mu.Unlock()
		return fs.OpenDir(name)
	}
	defer fs.mu.Unlock()
	if fs.mu.closed {
		return nil, pathErr("open", name, ErrClosed)
	}
	ino, ok := fs.mu.st.names[p]
	if !ok {
		return nil, pathErr("open", name, os.ErrNotExist)
	}
	f := fs.openLocked(fs.mu.st.inodes[ino], p, false)
	for _, o := range opts {
		o.Apply(f)
	}
	return f, nil
}

// OpenReadWrite opens the named file for reading and writing, creating it if it does not exist.
func (fs *FS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	p := clean(name)
	fs.mu.Lock()
	ino, ok := fs.mu.st.names[p]
	if !ok {
		fs.mu.Unlock()
		return fs.Create(name, category)
	}
	defer fs.mu.Unlock()
	if err := fs.checkLocked(); err != nil {
		return nil, pathErr("open", name, err)
	}
	f := fs.openLocked(fs.mu.st.inodes[ino], p, true)
	for _, o := range opts {
		o.Apply(f)
	}
	return f, nil
}

// OpenDir opens a directory; its Sync makes every change made so far durable.
func (fs *FS) OpenDir(name string) (vfs.File, error) {
	p := clean(name)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.mu.closed {
		return nil, pathErr("open", name, ErrClosed)
	}
	if _, ok := fs.mu.st.dirs[p]; !ok {
		return nil, pathErr("open", name, os.ErrNotExist)
	}
	return &dir{fs: fs, name: p}, nil
}

// Remove removes a file, or an empty directory.
func (fs *FS) Remove(name string) error {
	p := clean(name)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.checkLocked(); err != nil {
		return pathErr("remove", name, err)
	}
	if _, ok := fs.mu.st.names[p]; ok {
		_, err := fs.logLocked(record{kind: opUnlink, path: p})
		return err
	}
	if _, ok := fs.mu.st.dirs[p]; !ok || p == "/" {
		return pathErr("remove", name, os.ErrNotExist)
	}
	if fs.mu.st.hasChildren(p) {
		return pathErr("remove", name, fmt.Errorf("directory not empty: %w", os.ErrExist))
	}
	_, err := fs.logLocked(record{kind: opRmdir, path: p})
	return err
}

// RemoveAll removes name and everything under it; a missing name is not an error.
func (fs *FS) RemoveAll(name string) error {
	p := clean(name)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.checkLocked(); err != nil {
		return pathErr("removeall", name, err)
	}
	prefix := strings.TrimSuffix(p, "/") + "/"
	var files, dirs []string
	for q := range fs.mu.st.names {
		if q == p || strings.HasPrefix(q, prefix) {
			files = append(files, q)
		}
	}
	for q := range fs.mu.st.dirs {
		if (q == p || strings.HasPrefix(q, prefix)) && q != "/" {
			dirs = append(dirs, q)
		}
	}
	for _, q := range files {
		if _, err := fs.logLocked(record{kind: opUnlink, path: q}); err != nil {
			return err
		}
	}
	// Deepest first, so each directory is empty when removed.
	sortByDepthDesc(dirs)
	for _, q := range dirs {
		if _, err := fs.logLocked(record{kind: opRmdir, path: q}); err != nil {
			return err
		}
	}
	return nil
}

func sortByDepthDesc(paths []string) {
	depth := func(s string) int { return strings.Count(s, "/") }
	for i := 1; i < len(paths); i++ {
		for j := i; j > 0 && depth(paths[j]) > depth(paths[j-1]); j-- {
			paths[j], paths[j-1] = paths[j-1], paths[j]
		}
	}
}

// Rename moves a file, replacing newname if it exists. Directories cannot be renamed.
func (fs *FS) Rename(oldname, newname string) error {
	from, to := clean(oldname), clean(newname)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.checkLocked(); err != nil {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err}
	}
	if _, ok := fs.mu.st.names[from]; !ok {
		if _, isDir := fs.mu.st.dirs[from]; isDir {
			return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: ErrUnsupported}
		}
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: os.ErrNotExist}
	}
	if _, isDir := fs.mu.st.dirs[to]; isDir {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: fmt.Errorf("target is a directory: %w", os.ErrExist)}
	}
	if err := fs.parentLocked(to); err != nil {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err}
	}
	if grow := int64(len(to) - len(from)); grow > 0 {
		if err := fs.roomLocked(grow); err != nil {
			return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err}
		}
	}
	_, err := fs.logLocked(record{kind: opRename, path: from, path2: to})
	return err
}

// ReuseForWrite renames oldname to newname and opens it for writing from offset 0 without
// truncating it, as pebble recycles WAL files: the old content past what is rewritten stays (its
// records carry the old log number, which pebble's reader rejects), and the file keeps its space
// and its recorded size, so syncs that stay inside that size write no journal record.
func (fs *FS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	if err := fs.Rename(oldname, newname); err != nil {
		return nil, err
	}
	return fs.OpenReadWrite(newname, category)
}

// MkdirAll creates dir and its parents.
func (fs *FS) MkdirAll(dir string, _ os.FileMode) error {
	p := clean(dir)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if _, ok := fs.mu.st.dirs[p]; ok {
		return nil
	}
	if err := fs.checkLocked(); err != nil {
		return pathErr("mkdir", dir, err)
	}
	if err := fs.roomLocked(nameCost(p) * int64(strings.Count(p, "/"))); err != nil {
		return pathErr("mkdir", dir, err)
	}
	if _, err := fs.logLocked(record{kind: opMkdir, path: p}); err != nil {
		return pathErr("mkdir", dir, fmt.Errorf("%w: %w", err, os.ErrExist))
	}
	return nil
}

// Lock takes an exclusive lock named name in this mounted file system (the device itself is
// opened by one process at a time, so the lock guards against two opens in one process).
func (fs *FS) Lock(name string) (io.Closer, error) {
	p := clean(name)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.mu.closed {
		return nil, pathErr("lock", name, ErrClosed)
	}
	if _, held := fs.mu.locks[p]; held {
		return nil, pathErr("lock", name, fmt.Errorf("lock held: %w", os.ErrExist))
	}
	fs.mu.locks[p] = struct{}{}
	return lockCloser(func() error {
		fs.mu.Lock()
		defer fs.mu.Unlock()
		delete(fs.mu.locks, p)
		return nil
	}), nil
}

type lockCloser func() error

func (c lockCloser) Close() error { return c() }

// List returns the names directly inside dir.
func (fs *FS) List(dir string) ([]string, error) {
	p := clean(dir)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if _, ok := fs.mu.st.dirs[p]; !ok {
		return nil, pathErr("list", dir, os.ErrNotExist)
	}
	return fs.mu.st.children(p), nil
}

// Stat describes the named file or directory.
func (fs *FS) Stat(name string) (vfs.FileInfo, error) {
	p := clean(name)
	fs.mu.Lock()
	if _, ok := fs.mu.st.dirs[p]; ok {
		fs.mu.Unlock()
		return fileInfo{name: path.Base(p), dir: true}, nil
	}
	ino, ok := fs.mu.st.names[p]
	if !ok {
		fs.mu.Unlock()
		return nil, pathErr("stat", name, os.ErrNotExist)
	}
	n := fs.mu.st.inodes[ino]
	fs.mu.Unlock()
	return n.info(path.Base(p)), nil
}

// PathBase returns the last element of p.
func (fs *FS) PathBase(p string) string { return path.Base(p) }

// PathJoin joins path elements with slashes.
func (fs *FS) PathJoin(elem ...string) string { return path.Join(elem...) }

// PathDir returns all but the last element of p.
func (fs *FS) PathDir(p string) string { return path.Dir(p) }

// GetDiskUsage reports the file system's space (the region and the added space): total, free
// for files, used (journal and superblocks included).
func (fs *FS) GetDiskUsage(string) (vfs.DiskUsage, error) {
	u := fs.Usage()
	return vfs.DiskUsage{AvailBytes: uint64(u.Free), TotalBytes: uint64(u.Size), UsedBytes: uint64(u.Size - u.Free)}, nil
}

// Unwrap returns nil: FS wraps no other file system.
func (fs *FS) Unwrap() vfs.FS { return nil }

// Usage describes the file system's space.
type Usage struct {
	// Size is the region's length plus the space added with AddSpace; Free what files can still
	// be given (free space in added extents included).
	Size, Free int64
	// Files and Dirs count names.
	Files, Dirs int
	// Journal is the journal's length, JournalUsed how much of it holds entries.
	Journal, JournalUsed int64
	// Freeing is space freed by changes not durable yet (deleted and trimmed files): it becomes
	// Free with the next journal flush (SyncJournal, or any file's Sync that records something).
	Freeing int64
}

// Usage returns the file system's space and counts.
func (fs *FS) Usage() Usage {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	size := fs.region.Length
	for _, e := range fs.mu.st.space {
		size += e.Length
	}
	var freeing int64
	for _, e := range fs.mu.pendingFree {
		freeing += e.Length
	}
	return Usage{Size: size, Free: fs.mu.alloc.Free(), Files: len(fs.mu.st.names), Dirs: len(fs.mu.st.dirs),
		Journal: fs.mu.sb.journal.Length, JournalUsed: fs.mu.jpos, Freeing: freeing}
}

// SyncJournal makes every change made so far durable (a journal flush, when any is pending), and
// with it allocatable the space those changes freed (Usage.Freeing).
func (fs *FS) SyncJournal() error { return fs.syncJournal(^uint64(0)) }

// Region returns the device range the file system manages.
func (fs *FS) Region() Extent { return fs.region }

// fileInfo is vfs.FileInfo for a metafs file or directory.
type fileInfo struct {
	name    string
	size    int64
	dir     bool
	modTime time.Time
}

func (i fileInfo) Name() string       { return i.name }
func (i fileInfo) Size() int64        { return i.size }
func (i fileInfo) ModTime() time.Time { return i.modTime }
func (i fileInfo) IsDir() bool        { return i.dir }
func (i fileInfo) Sys() any           { return nil }
func (i fileInfo) Mode() os.FileMode {
	if i.dir {
		return os.ModeDir | 0o755
	}
	return 0o644
}
func (i fileInfo) DeviceID() vfs.DeviceID { return vfs.DeviceID{} }

// errIsNoSpace reports whether err is the allocator's no-space error.
func errIsNoSpace(err error) bool { return errors.Is(err, alloc.ErrNoSpace) }
