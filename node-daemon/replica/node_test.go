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
			err := n.Write(ctx, s.store, s.vol, s.gen, 0, []byte{byte(s.gen)})
			if !errors.Is(err, s.want) {
				t.Fatalf("Write = %v, want %v", err, s.want)
			}
			if g, err := n.Generation(ctx, "s1", "v"); err != nil || g != s.wantGen {
				t.Fatalf("recorded generation = %d, %v; want %d", g, err, s.wantGen)
			}
		})
	}
	var stale *StaleError
	if err := n.Flush(ctx, "s1", "v", 2); !errors.As(err, &stale) || stale.Recorded != 5 || stale.Requested != 2 {
		t.Fatalf("stale flush = %v", err)
	}
	if _, err := n.Read(ctx, "s1", "v", 4, 0, 1); !errors.Is(err, ErrStaleGeneration) {
		t.Fatalf("stale read = %v", err)
	}
	if err := n.Trim(ctx, "s1", "v", 4, 0, 4096); !errors.Is(err, ErrStaleGeneration) {
		t.Fatalf("stale trim = %v", err)
	}
	if got, err := n.Read(ctx, "s1", "v", 5, 0, 1); err != nil || !bytes.Equal(got, []byte{5}) {
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
	if err := n2.Write(ctx, "s1", "v", 4, 0, []byte{4}); !errors.Is(err, ErrStaleGeneration) {
		t.Fatalf("older generation after restart = %v, want ErrStaleGeneration", err)
	}
}
