package replica_test

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/cobaltstore/cobalt/node-daemon/replica"
)

// openDurable opens a coordinator of generation gen on local whose dirty log is kept on the local
// replica's volume.
func openDurable(t *testing.T, gen uint64, rec replica.InSyncRecorder, local *node, id string, remotes ...replica.Replica) *replica.Coordinator {
	t.Helper()
	l := replica.NewLocal(local.srv.Replicas(), local.name, local.storeUUID, id)
	co, err := replica.Open(context.Background(), replica.Config{
		Generation:     gen,
		Local:          l,
		Remotes:        remotes,
		Recorder:       rec,
		ReplicaTimeout: 10 * time.Second,
		DirtyStore:     l.DirtyStore(gen),
	})
	if err != nil {
		t.Fatal(err)
	}
	return co
}

// TestResyncAfterCoordinatorRestart drops node-b while writes touch four 1 MiB regions, then
// replaces the coordinator by a new one (the next generation, as after a daemon restart) over the
// same local store: it loads the four regions from node-a's volume, and once node-b is out of
// sync again a Resync copies and compares exactly those regions and leaves equal copies.
func TestResyncAfterCoordinatorRestart(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, 2, storeSize)
	a, b := c.nodes[0], c.nodes[1]
	c.createVolume(t, volID, volSize, stripeBytes)
	fb := &failing{Syncer: c.remote(t, b, volID)}
	co := openDurable(t, 1, &recorder{}, a, volID, fb)
	if err := co.Write(ctx, 0, bytes.Repeat([]byte{7}, 8<<20)); err != nil {
		t.Fatal(err)
	}
	fb.down.Store(true)
	for _, w := range []struct{ off, n int64 }{
		{4096, 4096},             // region 0
		{5 * region, 4096},       // region 5
		{5*region + 8192, 65536}, // region 5 again
		{20*region - 4096, 8192}, // regions 19 and 20
	} {
		if err := co.Write(ctx, w.off, bytes.Repeat([]byte{9}, int(w.n))); err != nil {
			t.Fatal(err)
		}
	}
	const dirty = 4 * region
	if got := co.Dirty().Bytes(b.name); got != dirty {
		t.Fatalf("dirty bytes of node-b = %d, want %d", got, dirty)
	}

	// The restart: the old coordinator is gone, a new one of the next generation opens.
	rec := &recorder{}
	fb2 := &failing{Syncer: c.remote(t, b, volID)}
	re := openDurable(t, 2, rec, a, volID, fb2)
	if got := re.Dirty().Extents(b.name); !slices.Equal(got, []replica.Extent{{0, region}, {5 * region, region}, {19 * region, 2 * region}}) {
		t.Fatalf("dirty regions of node-b after the restart = %v", got)
	}
	if got := re.Dirty().Bytes(a.name); got != 0 {
		t.Fatalf("dirty bytes of node-a after the restart = %d", got)
	}
	// node-b is still away: the next write (in a region already dirty) drops it.
	fb2.down.Store(true)
	if err := re.Write(ctx, 8192, []byte("while node-b is away")); err != nil {
		t.Fatal(err)
	}
	if _, dropped := rec.drops()[b.name]; !dropped {
		t.Fatal("node-b was not dropped by the new coordinator")
	}
	var prog progressLog
	res, err := re.Resync(ctx, a.name, c.remote(t, b, volID), replica.SyncOptions{Progress: prog.add})
	if err != nil {
		t.Fatal(err)
	}
	if res.Copied != dirty || res.Compared != dirty {
		t.Fatalf("resync result = %+v, want %d bytes copied and compared", res, dirty)
	}
	if got := re.InSync(); !slices.Equal(got, []string{a.name, b.name}) {
		t.Fatalf("in sync after resync = %v", got)
	}
	sameImages(t, a, b)
}
