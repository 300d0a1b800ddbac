// Package objstoretest is the conformance suite of the objstore contract (objstore/doc.go and the
// op semantics of objstore/op.go): every objstore.Store implementation runs it from its own tests
// with Run, so the engine adapter and memstore are held to the same behavior.
//
// The suite checks each op's effect, that ops of a transaction see the earlier ones, that a
// transaction with a failing or invalid op changes nothing, the error kinds of bad input (a table
// of cases, errors.go), reads past the end and over holes, paging, capacity (ErrNoSpace), that
// returned and passed buffers are copies, concurrent use, and, for an implementation that persists,
// that everything committed survives a reopen. Consistency checks of the implementation (the
// engine's fsck) belong in the cleanup its New registers.
package objstoretest

import (
	"context"
	"testing"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
)

// Instance is one store under test.
type Instance struct {
	// Store is an empty store with a capacity of 16 MiB to 1 GiB.
	Store objstore.Store
	// Reopen, if not nil, closes the current store and opens the same store again from what it
	// persisted; the persistence checks run only for an instance that has it.
	Reopen func(t *testing.T) objstore.Store
}

// New makes an Instance for one test. It registers with t.Cleanup what must happen after the test
// (closing the store, a consistency check of what the test left).
type New func(t *testing.T) Instance

// Run runs the conformance suite, each check as a subtest of t with its own store.
func Run(t *testing.T, newStore New) {
	t.Helper()
	for _, c := range checks() {
		t.Run(c.name, func(t *testing.T) { c.run(t, newStore(t)) })
	}
	t.Run("errors", func(t *testing.T) { runErrors(t, newStore(t)) })
	t.Run("persistence", func(t *testing.T) { runPersistence(t, newStore(t)) })
}

type check struct {
	name string
	run  func(t *testing.T, in Instance)
}

func checks() []check {
	var all []check
	all = append(all, effectChecks()...)
	all = append(all, omapChecks()...)
	all = append(all, copyChecks()...)
	all = append(all, txnChecks()...)
	all = append(all, readChecks()...)
	return all
}

// commit commits ops and fails the test on an error.
func commit(t *testing.T, s objstore.Store, ops ...objstore.Op) {
	t.Helper()
	if err := s.Commit(context.Background(), ops); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// read reads [off, off+length) of c/o and fails the test on an error.
func read(t *testing.T, s objstore.Store, c, o string, off, length int64) []byte {
	t.Helper()
	b, err := s.Read(context.Background(), c, o, off, length)
	if err != nil {
		t.Fatalf("Read %s/%s [%d,+%d): %v", c, o, off, length, err)
	}
	return b
}

// size returns the size of c/o and fails the test on an error.
func size(t *testing.T, s objstore.Store, c, o string) int64 {
	t.Helper()
	st, err := s.Stat(context.Background(), c, o)
	if err != nil {
		t.Fatalf("Stat %s/%s: %v", c, o, err)
	}
	return st.Size
}

// statfs returns the store's capacity figures and fails the test on an error.
func statfs(t *testing.T, s objstore.Store) objstore.Statfs {
	t.Helper()
	fs, err := s.Statfs(context.Background())
	if err != nil {
		t.Fatalf("Statfs: %v", err)
	}
	return fs
}

// pattern is n bytes that differ from their neighbours' and are never all zero.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed | 1
	}
	return b
}
