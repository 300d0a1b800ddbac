package kv

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// ErrStuck: the database met a failed device (Options.DeviceFailed) and an operation of it will
// never return. The database can be neither used nor closed; it holds its goroutines and memory
// until the process exits. Its files on the device are as a crash at that instant would leave
// them, and a new Open on a working device (the same one repaired, or an image of it) recovers.
var ErrStuck = errors.New("kv: the metadata database is stuck on a failed device")

// failStop is a vfs.FS for pebble over a file system that can fail for good (a device that
// stopped taking writes). pebble does not survive some failed writes: it panics when closing its
// WAL at a rotation fails, when a WAL record cannot be queued after a failed write, and calls
// Fatalf when a MANIFEST write or sync fails. A panic there unwinds through code that had released
// pebble's mutex, which ends the process with an unrecoverable "unlock of unlocked mutex"; with
// several stores in one process, a single failed device would take every store down with it.
//
// So an operation that changes the file system (a write, a sync, a create, a rename, closing a
// written file, ...) and fails with an error for which deviceFailed is true does not return:
// failStop records the error, closes its stuck channel, and blocks the calling goroutine for
// good. Nothing the failed operation was to make durable is acknowledged,
// because its caller never learns of a success. Reads and operations that fail for other reasons
// (no space, no such file) return their errors to pebble as before. Once stuck, every later
// changing operation blocks too, whatever its outcome would have been, so no goroutine of pebble
// learns of the failure from a later call either.
type failStop struct {
	fs           vfs.FS
	deviceFailed func(error) bool

	once  sync.Once
	stuck chan struct{} // closed at the first failure
	err   error         // the first failure; set before stuck is closed
	never chan struct{} // never closed: what a stopped operation waits for
}

func newFailStop(fs vfs.FS, deviceFailed func(error) bool) *failStop {
	return &failStop{fs: fs, deviceFailed: deviceFailed, stuck: make(chan struct{}), never: make(chan struct{})}
}

// Err returns the failure the database stopped at (wrapping ErrStuck), nil while it runs.
func (f *failStop) Err() error {
	select {
	case <-f.stuck:
		return f.err
	default:
		return nil
	}
}

// check lets a changing operation's outcome through, or stops the calling goroutine for good if
// the operation failed because the file system did (deviceFailed). Operations call check after
// running, and wait first: once stuck, a changing operation does not run at all.
func (f *failStop) check(err error) {
	if err == nil || !f.deviceFailed(err) {
		return
	}
	f.once.Do(func() {
		f.err = fmt.Errorf("%w: %w", ErrStuck, err)
		close(f.stuck)
	})
	<-f.never
}

// unlessStuck runs fn and returns its error, or the failure (wrapping ErrStuck) as soon as the
// file system fails, leaving fn to a goroutine that may never end. A nil failStop runs fn.
func (f *failStop) unlessStuck(fn func() error) error {
	if f == nil {
		return fn()
	}
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-f.stuck:
		return f.err
	}
}

// wait stops the calling goroutine for good once the file system failed, before a changing
// operation runs.
func (f *failStop) wait() {
	select {
	case <-f.stuck:
		<-f.never
	default:
	}
}

var _ vfs.FS = (*failStop)(nil)

func (f *failStop) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f.wait()
	file, err := f.fs.Create(name, category)
	f.check(err)
	return f.wrap(file, true), err
}

func (f *failStop) Link(oldname, newname string) error {
	f.wait()
	err := f.fs.Link(oldname, newname)
	f.check(err)
	return err
}

func (f *failStop) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	file, err := f.fs.Open(name, opts...)
	return f.wrap(file, false), err
}

func (f *failStop) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f.wait()
	file, err := f.fs.OpenReadWrite(name, category, opts...)
	f.check(err)
	return f.wrap(file, true), err
}

func (f *failStop) OpenDir(name string) (vfs.File, error) {
	file, err := f.fs.OpenDir(name)
	return f.wrap(file, true), err
}

func (f *failStop) Remove(name string) error {
	f.wait()
	err := f.fs.Remove(name)
	f.check(err)
	return err
}

func (f *failStop) RemoveAll(name string) error {
	f.wait()
	err := f.fs.RemoveAll(name)
	f.check(err)
	return err
}

func (f *failStop) Rename(oldname, newname string) error {
	f.wait()
	err := f.fs.Rename(oldname, newname)
	f.check(err)
	return err
}

func (f *failStop) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f.wait()
	file, err := f.fs.ReuseForWrite(oldname, newname, category)
	f.check(err)
	return f.wrap(file, true), err
}

func (f *failStop) MkdirAll(dir string, perm os.FileMode) error {
	f.wait()
	err := f.fs.MkdirAll(dir, perm)
	f.check(err)
	return err
}

func (f *failStop) Lock(name string) (io.Closer, error) { return f.fs.Lock(name) }

func (f *failStop) List(dir string) ([]string, error) { return f.fs.List(dir) }

func (f *failStop) Stat(name string) (vfs.FileInfo, error) { return f.fs.Stat(name) }

func (f *failStop) PathBase(path string) string { return f.fs.PathBase(path) }

func (f *failStop) PathJoin(elem ...string) string { return f.fs.PathJoin(elem...) }

func (f *failStop) PathDir(path string) string { return f.fs.PathDir(path) }

func (f *failStop) GetDiskUsage(path string) (vfs.DiskUsage, error) { return f.fs.GetDiskUsage(path) }

func (f *failStop) Unwrap() vfs.FS { return f.fs }

// wrap returns file with its changing operations checked, or nil for a nil file. Closing a file
// is a changing operation if it was opened for writing (closing a written file records its size
// and gives back its unused space; syncing a directory makes its names durable).
func (f *failStop) wrap(file vfs.File, writable bool) vfs.File {
	if file == nil {
		return nil
	}
	return &failStopFile{File: file, fs: f, writable: writable}
}

// failStopFile checks a file's changing operations; reads and Stat pass through.
type failStopFile struct {
	vfs.File
	fs       *failStop
	writable bool
}

func (f *failStopFile) Write(p []byte) (int, error) {
	f.fs.wait()
	n, err := f.File.Write(p)
	f.fs.check(err)
	return n, err
}

func (f *failStopFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.wait()
	n, err := f.File.WriteAt(p, off)
	f.fs.check(err)
	return n, err
}

func (f *failStopFile) Preallocate(offset, length int64) error {
	f.fs.wait()
	err := f.File.Preallocate(offset, length)
	f.fs.check(err)
	return err
}

func (f *failStopFile) Sync() error {
	f.fs.wait()
	err := f.File.Sync()
	f.fs.check(err)
	return err
}

func (f *failStopFile) SyncData() error {
	f.fs.wait()
	err := f.File.SyncData()
	f.fs.check(err)
	return err
}

func (f *failStopFile) SyncTo(length int64) (bool, error) {
	f.fs.wait()
	full, err := f.File.SyncTo(length)
	f.fs.check(err)
	return full, err
}

func (f *failStopFile) Close() error {
	if !f.writable {
		return f.File.Close()
	}
	f.fs.wait()
	err := f.File.Close()
	f.fs.check(err)
	return err
}
