package store

import (
	"errors"
	"strings"
	"testing"

	"github.com/cobaltstore/cobalt/storage-engine/alloc"
	"github.com/cobaltstore/cobalt/storage-engine/kv"
	"github.com/cobaltstore/cobalt/storage-engine/onode"
	"github.com/cockroachdb/pebble/v2"
)

func TestRepairReleasesLeakedSpaceAndOrphanOmap(t *testing.T) {
	s := newStore(t, Options{})
	commit(t, s, NewTransaction().CreateCollection("c").Write("c", "o", 0, pattern(10000, 1)))
	free := s.Statfs().Available
	// Lose track of space: allocate it without referencing it, as a lost release would.
	leak, err := s.alloc.Allocate(3 * 4096)
	if err != nil {
		t.Fatal(err)
	}
	// An omap entry and an extent shard of objects that do not exist.
	if err := s.db.Set(kv.OmapKey(999999, "k"), []byte("v"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	on, err := s.loadOnode(OnodeKey{"c", "o"})
	if err != nil {
		t.Fatal(err)
	}
	shard, _ := on.EncodeShard(nil, 0, s.shardSize, s.csumBlock)
	if err := s.db.Set(kv.ExtentShardKey(888888, 0), shard, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	r, err := s.Fsck(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if r.OK() || r.LeakedBytes != 3*4096 || len(r.OrphanOmapNids) != 1 || len(r.Errors) != 0 ||
		len(r.OrphanExtentNids) != 1 || r.OrphanExtentNids[0] != 888888 {
		t.Fatalf("fsck = %+v; want 12 KiB leaked (%v), one orphan omap nid and one orphan shard nid", r, leak)
	}
	r, err = s.Repair(ctx)
	if err != nil || !r.OK() {
		t.Fatalf("after repair: %+v, %v", r, err)
	}
	if got := s.Statfs().Available; got != free {
		t.Fatalf("free space after repair %d, before the leak %d", got, free)
	}
}

func TestFsckFindsInconsistencies(t *testing.T) {
	cases := []struct {
		name   string
		break_ func(t *testing.T, s *Store)
		want   string
	}{
		{"referenced space marked free", func(t *testing.T, s *Store) {
			on, _ := s.loadOnode(OnodeKey{"c", "o"})
			if err := s.alloc.Release([]alloc.Extent{{Offset: int64(on.Extents[0].Phys), Length: 4096}}); err != nil {
				t.Fatal(err)
			}
		}, "overlaps referenced space"},
		{"lost refcount", func(t *testing.T, s *Store) {
			clear(s.pub.shared)
		}, "is referenced 2 times"},
		{"wrong stats record", func(t *testing.T, s *Store) {
			if err := s.db.Set(kv.StatsKey(), (&kv.Stats{Objects: 7}).Encode(), pebble.Sync); err != nil {
				t.Fatal(err)
			}
		}, "stats record says 7 objects"},
		{"undecodable onode", func(t *testing.T, s *Store) {
			if err := s.db.Set(kv.OnodeKey("c", "bad"), []byte{1, 2, 3}, pebble.Sync); err != nil {
				t.Fatal(err)
			}
		}, "corruption in c/bad"},
		{"undecodable extent shard", func(t *testing.T, s *Store) {
			on, _ := s.loadOnode(OnodeKey{"c", "o"})
			if err := s.db.Set(kv.ExtentShardKey(on.Nid, 0), []byte{onode.FormatVersion, 1, 2, 3}, pebble.Sync); err != nil {
				t.Fatal(err)
			}
		}, "corruption in c/o"},
		{"extent shard past the object", func(t *testing.T, s *Store) {
			on, _ := s.loadOnode(OnodeKey{"c", "o"})
			shard, _ := on.EncodeShard(nil, 0, s.shardSize, s.csumBlock)
			if err := s.db.Set(kv.ExtentShardKey(on.Nid, 7), shard, pebble.Sync); err != nil {
				t.Fatal(err)
			}
		}, "past its size"},
		{"object in missing collection", func(t *testing.T, s *Store) {
			on, _ := s.loadOnode(OnodeKey{"c", "o"})
			cp := on.Clone()
			cp.Nid = 0
			cp.Extents = nil
			if err := s.db.Set(kv.OnodeKey("ghost", "x"), cp.Encode(nil), pebble.Sync); err != nil {
				t.Fatal(err)
			}
		}, "collection that does not exist"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil, Options{})
			s, err := Open(ctx, e.dev, e.dir, e.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			commit(t, s, NewTransaction().CreateCollection("c").Write("c", "o", 0, pattern(8192, 1)).Clone("c", "o", "o2"))
			tc.break_(t, s)
			r, err := s.Fsck(ctx, false)
			if err != nil {
				t.Fatal(err)
			}
			if r.OK() || !strings.Contains(strings.Join(r.Errors, "\n"), tc.want) {
				t.Fatalf("fsck errors %q, want one containing %q", r.Errors, tc.want)
			}
		})
	}
}

func TestOpenRefusesCorruptMetadata(t *testing.T) {
	e := newEnv(t, nil, Options{})
	s, err := Open(ctx, e.dev, e.dir, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	commit(t, s, NewTransaction().CreateCollection("c").Touch("c", "o"))
	if err := s.db.Set(kv.OnodeKey("c", "o"), []byte("garbage"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	s.cache.Remove(OnodeKey{"c", "o"})
	if _, err := s.Read(ctx, "c", "o", 0, 0); !IsCorruption(err) {
		t.Fatalf("Read of a garbage onode = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, e.dev, e.dir, e.opts); !IsCorruption(err) {
		t.Fatalf("Open with a garbage onode = %v, want a corruption error", err)
	}
}

// TestOpenRefusesOtherFormat: a store whose superblock names another metadata format (format 1
// kept extent maps inside onodes) is not mounted.
func TestOpenRefusesOtherFormat(t *testing.T) {
	e := newEnv(t, nil, Options{})
	s, err := Open(ctx, e.dev, e.dir, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := s.readSuper()
	if err != nil || sb.Format != FormatVersion {
		t.Fatalf("superblock after mkfs: %+v %v", sb, err)
	}
	sb.Format = 1
	if err := s.db.Set(kv.SuperKey(), sb.Encode(), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, e.dev, e.dir, e.opts); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "format 1") {
		t.Fatalf("Open of a format-1 store = %v, want ErrInvalid naming format 1", err)
	}
}
