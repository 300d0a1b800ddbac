package fuseloop

import (
	"context"
	"sync/atomic"
	"syscall"

	"github.com/go-logr/logr"
	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/cobaltstore/cobalt/node-daemon/frontend"
)

// zeroChunk bounds the buffer of zeros a FALLOC_FL_ZERO_RANGE is written with.
const zeroChunk = 1 << 20

// rootNode is the mount's root directory. Its children are the volume files; Frontend adds and
// removes them, the kernel only looks them up (no create, unlink or rename from outside).
type rootNode struct {
	fs.Inode
	blockSize int
}

var _ fs.NodeStatfser = (*rootNode)(nil)

// Statfs reports the block size: the loop device takes its discard granularity from it.
func (r *rootNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	out.Bsize = uint32(r.blockSize)
	out.Frsize = uint32(r.blockSize)
	out.NameLen = 255
	return 0
}

// volumeState is what the I/O path reads of a volume, swapped as a whole so that requests never
// take a lock: Expose replaces the backend, Resize the size, Remove clears the backend.
type volumeState struct {
	backend frontend.Backend // nil once the volume is removed: I/O then fails with EIO
	size    int64
}

// volumeFile is the regular file that serves one volume. Every request runs in its own
// goroutine (go-fuse serves concurrently) and calls the Backend without holding any lock.
type volumeFile struct {
	fs.Inode
	id    string
	state atomic.Pointer[volumeState]
	// ctx is the Frontend's serving context, not the request's: the kernel interrupts a request
	// when its caller gets a signal, and a block device must not half-apply a write because of
	// that. Close cancels ctx.
	ctx context.Context
	log logr.Logger
}

var (
	_ fs.NodeOpener    = (*volumeFile)(nil)
	_ fs.NodeGetattrer = (*volumeFile)(nil)
	_ fs.NodeSetattrer = (*volumeFile)(nil)
	_ fs.NodeReader    = (*volumeFile)(nil)
	_ fs.NodeWriter    = (*volumeFile)(nil)
	_ fs.NodeFsyncer   = (*volumeFile)(nil)
	_ fs.NodeAllocater = (*volumeFile)(nil)
)

// Open returns no file handle (so go-fuse never hands the kernel a passthrough descriptor) and
// asks for direct I/O: the kernel keeps no page cache for the file and sends every read and
// write to the daemon, in parallel for writes that do not extend the file.
func (v *volumeFile) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	return nil, fuse.FOPEN_DIRECT_IO | fuse.FOPEN_PARALLEL_DIRECT_WRITES, 0
}

func (v *volumeFile) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	v.fillAttr(&out.Attr)
	return 0
}

// Setattr refuses size changes (the size is the volume's, changed by Resize) and ignores the
// rest (modes, owners and times mean nothing for a volume).
func (v *volumeFile) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if sz, ok := in.GetSize(); ok && int64(sz) != v.state.Load().size {
		return syscall.EPERM
	}
	v.fillAttr(&out.Attr)
	return 0
}

func (v *volumeFile) fillAttr(a *fuse.Attr) {
	size := v.state.Load().size
	a.Mode = syscall.S_IFREG | 0o600
	a.Nlink = 1
	a.Size = uint64(size)
	a.Blocks = uint64(size) / 512
	a.Blksize = zeroChunk
}

func (v *volumeFile) Read(ctx context.Context, f fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	st := v.state.Load()
	if st.backend == nil {
		return nil, syscall.EIO
	}
	if off < 0 {
		return nil, syscall.EINVAL
	}
	if off >= st.size {
		return fuse.ReadResultData(nil), 0
	}
	p := dest[:min(int64(len(dest)), st.size-off)]
	if err := st.backend.ReadAt(v.ctx, p, off); err != nil {
		v.log.Error(err, "backend read failed", "volume", v.id, "offset", off, "length", len(p))
		return nil, syscall.EIO
	}
	return fuse.ReadResultData(p), 0
}

func (v *volumeFile) Write(ctx context.Context, f fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	st := v.state.Load()
	if st.backend == nil {
		return 0, syscall.EIO
	}
	if off < 0 {
		return 0, syscall.EINVAL
	}
	if off+int64(len(data)) > st.size {
		return 0, syscall.ENOSPC // the file is the volume: it never grows by writing
	}
	if err := st.backend.WriteAt(v.ctx, data, off); err != nil {
		v.log.Error(err, "backend write failed", "volume", v.id, "offset", off, "length", len(data))
		return 0, syscall.EIO
	}
	return uint32(len(data)), 0
}

// Fsync is what a flush of the loop device (fsync, REQ_PREFLUSH, FUA) becomes. FLUSH (sent at
// every close) is deliberately not a Backend.Flush: close promises no durability.
func (v *volumeFile) Fsync(ctx context.Context, f fs.FileHandle, flags uint32) syscall.Errno {
	st := v.state.Load()
	if st.backend == nil {
		return syscall.EIO
	}
	if err := st.backend.Flush(v.ctx); err != nil {
		v.log.Error(err, "backend flush failed", "volume", v.id)
		return syscall.EIO
	}
	return 0
}

// Allocate serves the two modes the loop device sends: PUNCH_HOLE|KEEP_SIZE (discard, and
// write-zeroes that may unmap) becomes Backend.Trim; ZERO_RANGE|KEEP_SIZE (write-zeroes with
// REQ_NOUNMAP) writes zeros, so the space stays allocated. Other modes are EOPNOTSUPP: the file
// never changes size and the Backend cannot preallocate.
func (v *volumeFile) Allocate(ctx context.Context, f fs.FileHandle, off, length uint64, mode uint32) syscall.Errno {
	st := v.state.Load()
	if st.backend == nil {
		return syscall.EIO
	}
	start, end := int64(off), int64(off+length)
	if start < 0 || end < start {
		return syscall.EINVAL
	}
	end = min(end, st.size)
	if start >= end {
		return 0
	}
	switch mode {
	case unix.FALLOC_FL_PUNCH_HOLE | unix.FALLOC_FL_KEEP_SIZE:
		if err := st.backend.Trim(v.ctx, start, end-start); err != nil {
			v.log.Error(err, "backend trim failed", "volume", v.id, "offset", start, "length", end-start)
			return syscall.EIO
		}
		return 0
	case unix.FALLOC_FL_ZERO_RANGE | unix.FALLOC_FL_KEEP_SIZE:
		zeros := make([]byte, min(end-start, zeroChunk))
		for o := start; o < end; o += int64(len(zeros)) {
			p := zeros[:min(int64(len(zeros)), end-o)]
			if err := st.backend.WriteAt(v.ctx, p, o); err != nil {
				v.log.Error(err, "backend write of zeros failed", "volume", v.id, "offset", o, "length", len(p))
				return syscall.EIO
			}
		}
		return 0
	default:
		return syscall.EOPNOTSUPP
	}
}
