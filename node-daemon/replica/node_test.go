package replica

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
	"github.com/cobaltstore/cobalt/node-daemon/objstore/memstore"
	"github.com/cobaltstore/cobalt/node-daemon/volume"
)

// oneStore serves one volume manager as the node's only store.
type oneStore struct {
	uuid string
	m    *volume.Manager
}

func (o oneStore) VolumeManager(uuid string) (*volume.Manager, error) {
	if uuid != o.uuid {
		return nil, objstore.ErrNotFound
	}
	return o.m, nil
}

func TestNodeFencing(t *testing.T) {
	ctx := context.Background()
	st := memstore.New("s1", 1<<30)
	m, err := volume.Open(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(ctx, "v", 1<<20, 0); err != nil {
		t.Fatal(err)
	}
	n := NewNode(oneStore{"s1", m})
	if g, err := n.Generation(ctx, "s1", "v"); err != nil || g != 0 {
		t.Fatalf("generation of a never attached volume = %d, %v", g, err)
	}
	steps := []struct {
		name    string
		gen     uint64
		store   string
		vol     string
		want    error
		wantGen uint64 // recorded generation afterwards
	}{
		{"first generation is recorded", 3, "s1", "v", nil, 3},
		{"same generation runs", 3, "s1", "v", nil, 3},
		{"newer generation is recorded", 5, "s1", "v", nil, 5},
		{"older generation is refused", 4, "s1", "v", ErrStaleGeneration, 5},
		{"generation 0 is invalid", 0, "s1", "v", objstore.ErrInvalid, 5},
		{"missing volume", 9, "s1", "nope", objstore.ErrNotFound, 5},
		{"missing store", 9, "s2", "v", objstore.ErrNotFound, 5},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			err := n.Write(ctx, Ref{StoreUUID: s.store, Volume: s.vol}, s.gen, 0, []byte{byte(s.gen)})
			if !errors.Is(err, s.want) {
				t.Fatalf("Write = %v, want %v", err, s.want)
			}
			if g, err := n.Generation(ctx, "s1", "v"); err != nil || g != s.wantGen {
				t.Fatalf("recorded generation = %d, %v; want %d", g, err, s.wantGen)
			}
		})
	}
	var stale *StaleError
	if err := n.Flush(ctx, Ref{StoreUUID: "s1", Volume: "v"}, 2); !errors.As(err, &stale) || stale.Recorded != 5 || stale.Requested != 2 {
		t.Fatalf("stale flush = %v", err)
	}
	if _, err := n.Read(ctx, Ref{StoreUUID: "s1", Volume: "v"}, 4, 0, 1); !errors.Is(err, ErrStaleGeneration) {
		t.Fatalf("stale read = %v", err)
	}
	if err := n.Trim(ctx, Ref{StoreUUID: "s1", Volume: "v"}, 4, 0, 4096); !errors.Is(err, ErrStaleGeneration) {
		t.Fatalf("stale trim = %v", err)
	}
	if got, err := n.Read(ctx, Ref{StoreUUID: "s1", Volume: "v"}, 5, 0, 1); err != nil || !bytes.Equal(got, []byte{5}) {
		t.Fatalf("the refused writes landed: %v, %v", got, err)
	}
	// The generation is durable: a node restarted on the same store still refuses generation 4.
	m2, err := volume.Open(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	n2 := NewNode(oneStore{"s1", m2})
	if g, err := n2.Generation(ctx, "s1", "v"); err != nil || g != 5 {
		t.Fatalf("generation after restart = %d, %v; want 5", g, err)
	}
	if err := n2.Write(ctx, Ref{StoreUUID: "s1", Volume: "v"}, 4, 0, []byte{4}); !errors.Is(err, ErrStaleGeneration) {
		t.Fatalf("older generation after restart = %v, want ErrStaleGeneration", err)
	}
}

// TestNodeForgetsAReplacedVolume: a volume deleted and created again under the same ID is a new
// copy. The node refuses requests meant for the old incarnation, and what it kept of the old one
// (its recorded generation, its write-intent log) does not carry over, whether the volume was
// deleted through Node.Delete or behind the node's back.
func TestNodeForgetsAReplacedVolume(t *testing.T) {
	ctx := context.Background()
	st := memstore.New("s1", 1<<30)
	m, err := volume.Open(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	n := NewNode(oneStore{"s1", m})
	for _, tc := range []struct {
		name   string
		delete func() error
	}{
		{"through the node", func() error { return n.Delete(ctx, "s1", "v") }},
		{"behind the node's back", func() error { return m.Delete(ctx, "v") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := m.Create(ctx, "v", 4<<20, 0); err != nil {
				t.Fatal(err)
			}
			old, err := n.Incarnation(ctx, Ref{StoreUUID: "s1", Volume: "v"})
			if err != nil {
				t.Fatal(err)
			}
			ref := Ref{StoreUUID: "s1", Volume: "v", Incarnation: old}
			if err := n.ClearIntent(ctx, ref, 5, nil, true); err != nil { // starts the log
				t.Fatal(err)
			}
			if err := n.Write(ctx, ref, 5, 0, []byte{1}); err != nil {
				t.Fatal(err)
			}
			if in, err := n.Intent(ctx, ref, 5); err != nil || !in.Tracking || len(in.Regions) != 1 {
				t.Fatalf("intent before = %+v, %v; want one marked region", in, err)
			}

			if err := tc.delete(); err != nil {
				t.Fatal(err)
			}
			if _, err := m.Create(ctx, "v", 4<<20, 0); err != nil {
				t.Fatal(err)
			}
			var replaced *ReplacedError
			if err := n.Write(ctx, ref, 5, 0, []byte{2}); !errors.As(err, &replaced) || replaced.Expected != old || replaced.Found == old {
				t.Fatalf("write meant for the old incarnation: %v, want a ReplacedError naming both", err)
			}
			if _, err := n.Read(ctx, ref, 5, 0, 1); !errors.Is(err, ErrReplaced) {
				t.Fatalf("read meant for the old incarnation: %v, want ErrReplaced", err)
			}
			fresh := Ref{StoreUUID: "s1", Volume: "v"}
			if g, err := n.Generation(ctx, "s1", "v"); err != nil || g != 0 {
				t.Fatalf("generation of the new volume = %d, %v; want 0 (the old one's 5 is gone)", g, err)
			}
			if err := n.Flush(ctx, fresh, 1); err != nil {
				t.Fatalf("generation 1 on the new volume: %v", err)
			}
			in, err := n.Intent(ctx, fresh, 1)
			if err != nil || in.Tracking {
				t.Fatalf("intent of the new volume = %+v, %v; want no log (the old one's marks are gone)", in, err)
			}
			if got, err := n.Read(ctx, fresh, 1, 0, 1); err != nil || got[0] != 0 {
				t.Fatalf("read of the new volume = %v, %v; want a zero", got, err)
			}
			if err := n.Delete(ctx, "s1", "v"); err != nil {
				t.Fatal(err)
			}
		})
	}
}
