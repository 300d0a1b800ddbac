package transport

import (
	"net"
	"sync"
)

// BatchSize is the most bytes of records a batch gathers before it is written out: a 1 MiB
// write of gRPC's transport goes to the socket in five system calls instead of 64. Each
// connection keeps a buffer of that size once it has batched that much.
const BatchSize = 256 << 10

// batchedConn is the TLS connection gRPC uses: each Write batches the records TLS produces for
// it in w and writes them out before it returns.
type batchedConn struct {
	net.Conn // the TLS connection, which writes its records to w
	w        *recordWriter
}

// Write implements net.Conn.
func (c *batchedConn) Write(p []byte) (int, error) {
	c.w.begin()
	n, err := c.Conn.Write(p)
	if ferr := c.w.end(); ferr != nil && err == nil {
		// The records are encrypted and counted by TLS, but did not all reach the socket: the
		// connection cannot go on (the failure is sticky in w).
		return 0, ferr
	}
	return n, err
}

// recordWriter is the connection under TLS. Between begin and end it gathers what TLS writes
// and writes it out in batches of up to BatchSize bytes; otherwise it writes through.
type recordWriter struct {
	net.Conn // the socket
	// mu guards the fields below; it is held across the socket writes, so writes are never
	// reordered.
	mu       sync.Mutex
	batching bool
	buf      []byte
	err      error // the first failed socket write, returned by every later one
}

func newRecordWriter(conn net.Conn) *recordWriter { return &recordWriter{Conn: conn} }

// Write implements net.Conn for TLS.
func (w *recordWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	if !w.batching {
		if err := w.flushLocked(); err != nil {
			return 0, err
		}
		return w.writeLocked(p)
	}
	// TLS writes one record at a time (at most 16 KiB and its overhead).
	if len(w.buf)+len(p) > BatchSize {
		if err := w.flushLocked(); err != nil {
			return 0, err
		}
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}

// begin starts gathering the records written from now on.
func (w *recordWriter) begin() {
	w.mu.Lock()
	w.batching = true
	w.mu.Unlock()
}

// end stops gathering and writes out what was gathered.
func (w *recordWriter) end() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.batching = false
	if w.err != nil {
		return w.err
	}
	return w.flushLocked()
}

func (w *recordWriter) flushLocked() error {
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.writeLocked(w.buf)
	w.buf = w.buf[:0]
	return err
}

// writeLocked writes p to the socket, whole or not at all as far as later writes are concerned:
// a short or failed write fails the connection.
func (w *recordWriter) writeLocked(p []byte) (int, error) {
	n, err := w.Conn.Write(p)
	if err != nil {
		w.err = err
	}
	return n, err
}
