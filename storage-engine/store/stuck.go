package store

import (
	"errors"
	"fmt"

	"github.com/cobaltstore/cobalt/storage-engine/kv"
)

// A store opens its metadata database with kv's fail-stop: when the device under it fails a
// metadata write (metafs.ErrFailed on a device region; EIO or EROFS from a host directory), the pebble operation that met the failure never returns instead
// of panicking (which would end the process, and every other store in it). The store then:
//   - refuses writes from then on, as after a failed commit (failErr, health Failed);
//   - fails the commits waiting for their group at once, with ErrFailed: the outcome of a commit
//     that was in flight is unknown, as after a power cut (it may be durable or not), and it is
//     never acknowledged;
//   - does not wait at Close for what cannot end: Close returns an error wrapping ErrFailed and
//     kv.ErrStuck and leaves the store's goroutines, database and memory behind until the
//     process exits. The devices are as a power cut at the failure would leave them: a mount
//     after the device is repaired (or of an image of it) recovers the last durable state.

// watchStuck marks the store failed when its metadata database gets stuck.
func (s *Store) watchStuck() {
	defer s.wg.Done()
	select {
	case <-s.db.Stuck():
		s.markStuck()
	case <-s.stopBG:
	}
}

// markStuck records the stuck database as the error that refuses writes, unless one is recorded.
func (s *Store) markStuck() {
	err := fmt.Errorf("%w: the metadata device failed and the metadata database stopped: %w", ErrFailed, s.db.StuckErr())
	s.failErr.CompareAndSwap(nil, &err)
}

// stuckErr returns the error for an operation cut short by a stuck database.
func (s *Store) stuckErr() error {
	s.markStuck()
	return *s.failErr.Load()
}

// unlessStuck runs fn and returns its error, or returns as soon as the metadata database is stuck
// (with the error that refuses writes), leaving fn to a goroutine that may never end.
func (s *Store) unlessStuck(fn func() error) error {
	if err := s.db.UnlessStuck(fn); !errors.Is(err, kv.ErrStuck) {
		return err
	}
	return s.stuckErr()
}
