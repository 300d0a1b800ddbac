package blockdev

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// memChunkSize is the granularity of the in-memory device's sparse storage. Chunks that were never
// written read as zeros and cost no memory, so a test can create a large device cheaply.
const memChunkSize = 64 << 10

// MemDevice is an in-memory Device for tests. It enforces the same rules as a real O_DIRECT
// device (aligned offsets, lengths and buffer addresses; bounds) and reports violations as errors
// wrapping ErrMisaligned or ErrOutOfRange. Storage is sparse: never-written space reads as zeros.
//
// Every write is "durable" as soon as WriteAt returns; use the faultdev package to model a volatile
// write cache and power cuts. A MemDevice is safe for concurrent use. Close only invalidates this
// handle: Reopen returns a fresh handle onto the same contents, as reopening a disk would.
type MemDevice struct {
	st     *memStore
	closed atomic.Bool
}

// memStore is the shared contents of a MemDevice and of handles made by Reopen.
type memStore struct {
	size      int64
	blockSize int
	chunkSize int64
	// name names the device in errors (made once: every I/O passes it to checkIO).
	name string

	// mu guards the fields in this struct.
	mu struct {
		sync.RWMutex
		chunks     map[int64][]byte // chunk index -> chunkSize bytes
		rotational bool
	}

	reads, writes, flushes  atomic.Int64
	bytesRead, bytesWritten atomic.Int64
}

// MemStats counts the operations a MemDevice (and every handle onto its contents) has served.
type MemStats struct {
	Reads, Writes, Flushes  int64
	BytesRead, BytesWritten int64
}

// NewMem returns an empty in-memory device of size bytes with the given logical block size.
// A blockSize that is not a power of two in [512, 65536] is replaced by 4096; size is rounded down
// to a multiple of the block size (negative sizes become 0). The device reports Rotational() ==
// false until SetRotational changes it.
func NewMem(size int64, blockSize int) *MemDevice {
	if !validBlockSize(blockSize) {
		blockSize = 4096
	}
	if size < 0 {
		size = 0
	}
	size -= size % int64(blockSize)
	st := &memStore{size: size, blockSize: blockSize, chunkSize: max(memChunkSize, int64(blockSize)),
		name: fmt.Sprintf("mem device (%d bytes)", size)}
	st.mu.chunks = make(map[int64][]byte)
	return &MemDevice{st: st}
}

func (m *MemDevice) name() string { return m.st.name }

// ReadAt implements Device.
func (m *MemDevice) ReadAt(p []byte, off int64) (int, error) {
	if m.closed.Load() {
		return 0, fmt.Errorf("read %s at %d: %w", m.name(), off, ErrClosed)
	}
	if err := checkIO(m.name(), "read", p, off, m.st.size, m.st.blockSize); err != nil {
		return 0, err
	}
	m.st.read(p, off)
	m.st.reads.Add(1)
	m.st.bytesRead.Add(int64(len(p)))
	return len(p), nil
}

// WriteAt implements Device.
func (m *MemDevice) WriteAt(p []byte, off int64) (int, error) {
	if m.closed.Load() {
		return 0, fmt.Errorf("write %s at %d: %w", m.name(), off, ErrClosed)
	}
	if err := checkIO(m.name(), "write", p, off, m.st.size, m.st.blockSize); err != nil {
		return 0, err
	}
	m.st.write(p, off)
	m.st.writes.Add(1)
	m.st.bytesWritten.Add(int64(len(p)))
	return len(p), nil
}

// Flush implements Device. The in-memory device has no volatile cache, so it only counts the call.
func (m *MemDevice) Flush() error {
	if m.closed.Load() {
		return fmt.Errorf("flush %s: %w", m.name(), ErrClosed)
	}
	m.st.flushes.Add(1)
	return nil
}

// Size implements Device.
func (m *MemDevice) Size() int64 { return m.st.size }

// BlockSize implements Device.
func (m *MemDevice) BlockSize() int { return m.st.blockSize }

// Rotational implements Device.
func (m *MemDevice) Rotational() bool {
	m.st.mu.RLock()
	defer m.st.mu.RUnlock()
	return m.st.mu.rotational
}

// SetRotational changes what Rotational reports, so tests can exercise HDD defaults.
func (m *MemDevice) SetRotational(r bool) {
	m.st.mu.Lock()
	defer m.st.mu.Unlock()
	m.st.mu.rotational = r
}

// Close implements Device. It invalidates this handle only; the contents stay reachable via Reopen.
// Closing twice returns an error wrapping ErrClosed.
func (m *MemDevice) Close() error {
	if m.closed.Swap(true) {
		return fmt.Errorf("close %s: %w", m.name(), ErrClosed)
	}
	return nil
}

// Reopen returns a new open handle onto the same contents (shared, not copied), whether or not
// this handle has been closed.
func (m *MemDevice) Reopen() *MemDevice { return &MemDevice{st: m.st} }

// Clone returns an independent open device holding a copy of the current contents and properties.
// Statistics start at zero.
func (m *MemDevice) Clone() *MemDevice {
	c := NewMem(m.st.size, m.st.blockSize)
	m.st.mu.RLock()
	defer m.st.mu.RUnlock()
	c.st.mu.rotational = m.st.mu.rotational
	for i, ch := range m.st.mu.chunks {
		c.st.mu.chunks[i] = append([]byte(nil), ch...)
	}
	return c
}

// Stats returns the operation counters shared by every handle onto these contents.
func (m *MemDevice) Stats() MemStats {
	return MemStats{
		Reads: m.st.reads.Load(), Writes: m.st.writes.Load(), Flushes: m.st.flushes.Load(),
		BytesRead: m.st.bytesRead.Load(), BytesWritten: m.st.bytesWritten.Load(),
	}
}

// FlipBit inverts one bit of the stored contents (bit 0 is the least significant bit of the byte at
// off), modeling media corruption. It bypasses alignment rules and returns ErrOutOfRange for an
// offset outside the device or a bit index above 7.
func (m *MemDevice) FlipBit(off int64, bit uint) error {
	if off < 0 || off >= m.st.size || bit > 7 {
		return fmt.Errorf("flip bit %d at %d on %s: %w", bit, off, m.name(), ErrOutOfRange)
	}
	m.st.mu.Lock()
	defer m.st.mu.Unlock()
	ch := m.st.chunkLocked(off / m.st.chunkSize)
	ch[off%m.st.chunkSize] ^= 1 << bit
	return nil
}

// read copies [off, off+len(p)) into p; the caller has validated the range.
func (s *memStore) read(p []byte, off int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for len(p) > 0 {
		idx, in := off/s.chunkSize, off%s.chunkSize
		n := min(int64(len(p)), s.chunkSize-in)
		if ch, ok := s.mu.chunks[idx]; ok {
			copy(p[:n], ch[in:in+n])
		} else {
			clear(p[:n])
		}
		p, off = p[n:], off+n
	}
}

// write copies p to [off, off+len(p)); the caller has validated the range.
func (s *memStore) write(p []byte, off int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(p) > 0 {
		idx, in := off/s.chunkSize, off%s.chunkSize
		n := min(int64(len(p)), s.chunkSize-in)
		copy(s.chunkLocked(idx)[in:in+n], p[:n])
		p, off = p[n:], off+n
	}
}

// chunkLocked returns chunk idx, allocating it (zeroed) if needed. The last chunk may extend past
// the device size; those bytes are never addressable.
// REQUIRES: s.mu held for writing.
func (s *memStore) chunkLocked(idx int64) []byte {
	ch, ok := s.mu.chunks[idx]
	if !ok {
		ch = make([]byte, s.chunkSize)
		s.mu.chunks[idx] = ch
	}
	return ch
}
