package store

import (
	"bytes"
	"testing"

	"github.com/cobaltstore/cobalt/storage-engine/kv"
)

// stagedKeys stages txn as a group of its own, as the committer does, and returns the keys its
// batch writes (sets and deletions), leaving the store as it was.
func stagedKeys(t *testing.T, s *Store, txn *Transaction) [][]byte {
	t.Helper()
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	g := s.newGroup()
	defer g.abort()
	if err := g.applyTxn(0, txn, nil); err != nil {
		t.Fatal(err)
	}
	if err := g.finish(); err != nil {
		t.Fatal(err)
	}
	var keys [][]byte
	r := g.batch.Reader()
	for {
		_, k, _, ok, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return keys
		}
		keys = append(keys, bytes.Clone(k))
	}
}

// TestOnodeRecordWrittenOnlyWhenChanged: a write inside an object's size changes its extent map
// only, so its group writes the changed shard and not the onode record, which the KV holds as
// is; a change of size, xattrs or omap header, a new object and a rename write the record. Every
// state then reads back after a reopen.
func TestOnodeRecordWrittenOnlyWhenChanged(t *testing.T) {
	e := newEnv(t, nil, Options{verifyShards: true})
	s := e.open(t)
	commit(t, s, NewTransaction().CreateCollection("c").Write("c", "o", 0, pattern(64<<10, 1)))
	record := kv.OnodeKey("c", "o")
	tests := []struct {
		name   string
		txn    *Transaction
		record bool
	}{
		{"overwrite in place", NewTransaction().Write("c", "o", 4096, pattern(4096, 2)), false},
		{"unaligned overwrite", NewTransaction().Write("c", "o", 100, pattern(5000, 3)), false},
		{"large overwrite", NewTransaction().Write("c", "o", 0, pattern(64<<10, 4)), false},
		{"zero inside", NewTransaction().Zero("c", "o", 8192, 4096), false},
		{"write past the end", NewTransaction().Write("c", "o", 64<<10, pattern(4096, 5)), true},
		{"truncate", NewTransaction().Truncate("c", "o", 32<<10), true},
		{"setattr", NewTransaction().SetAttr("c", "o", "a", []byte("v")), true},
		{"omap header", NewTransaction().OmapSetHeader("c", "o", []byte("h")), true},
		{"overwrite then setattr", NewTransaction().Write("c", "o", 0, pattern(4096, 6)).SetAttr("c", "o", "b", []byte("w")), true},
		{"remove and recreate", NewTransaction().Remove("c", "o").Write("c", "o", 0, pattern(4096, 7)), true},
	}
	for _, tc := range tests {
		keys := stagedKeys(t, s, tc.txn)
		has := false
		for _, k := range keys {
			has = has || bytes.Equal(k, record)
		}
		if has != tc.record {
			t.Errorf("%s: batch writes the onode record: %v, want %v", tc.name, has, tc.record)
		}
		if len(keys) == 0 {
			t.Errorf("%s: batch writes nothing", tc.name)
		}
	}
	// The same changes committed one after another read back, before and after a reopen.
	model := bytes.Clone(pattern(64<<10, 1))
	put := func(off int, p []byte) {
		if n := off + len(p); n > len(model) {
			model = append(model, make([]byte, n-len(model))...)
		}
		copy(model[off:], p)
	}
	commit(t, s, NewTransaction().Write("c", "o", 4096, pattern(4096, 2)))
	put(4096, pattern(4096, 2))
	commit(t, s, NewTransaction().Write("c", "o", 100, pattern(5000, 3)))
	put(100, pattern(5000, 3))
	commit(t, s, NewTransaction().Write("c", "o", 64<<10, pattern(4096, 5)))
	put(64<<10, pattern(4096, 5))
	commit(t, s, NewTransaction().Zero("c", "o", 8192, 4096))
	put(8192, make([]byte, 4096))
	commit(t, s, NewTransaction().SetAttr("c", "o", "a", []byte("v")))
	check := func(s *Store) {
		t.Helper()
		mustRead(t, s, "c", "o", 0, 0, model)
		if v, err := s.GetAttr(ctx, "c", "o", "a"); err != nil || string(v) != "v" {
			t.Fatalf("GetAttr = %q, %v", v, err)
		}
	}
	check(s)
	s = reopen(t, e, s)
	check(s)
}
