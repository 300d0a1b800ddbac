package integration

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/onsi/gomega"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/node-daemon/replvol"
)

// TestReplicationKillReplicaRebuildsOnSpareStore: a Volume of three copies on three of four node
// daemons (processes, each with its own device and node name) under a continuous verified write
// stream; one copy's daemon is killed with SIGKILL. Writes continue without an error, the Volume
// shows the copy not in sync and is Degraded; after the replacement delay the operator places a
// new copy on the fourth Store, the coordinator rebuilds it and it becomes InSync; then every
// acknowledged write reads back through the coordinator and from each of the three copies, which
// compare equal.
func TestReplicationKillReplicaRebuildsOnSpareStore(t *testing.T) {
	rc := newReplCluster(t, 3*time.Second)
	vol := rc.createVolume(t, "killed", 3)
	coordNode := vol.Status.Replicas[0].Node // the coordinator stands for this copy's node
	gen := rc.publish(t, vol.Name, coordNode)
	coord := rc.coordinator(t, coordNode, 500*time.Millisecond)
	be := rc.open(t, coord, vol, gen)
	t.Cleanup(func() { _ = be.Close(context.Background()) })

	m := newModel()
	s := startStream(be, m, streamOptions{tag: 1, seed: uint64(time.Now().UnixNano()), stopOnError: true})
	waitAcked(t, s, 200)

	victimStore := vol.Status.Replicas[2].Store
	victim := rc.nodeOfStore(t, victimStore)
	spare := rc.spareStore(t, vol)
	before := s.result().acked
	victim.signal(t, syscall.SIGKILL)
	<-victim.proc.exited
	killedAt := time.Now()

	// The coordinator drops the copy (CatchingUp, through the API server) and keeps writing; the
	// operator sees its Store not Ready (Lost) and the Volume Degraded.
	rc.waitVolume(t, vol.Name, "Degraded with the killed copy out of sync", func(v *storagev1alpha1.Volume) bool {
		st := replicaState(v, victimStore)
		return isDegraded(v) && (st == storagev1alpha1.ReplicaCatchingUp || st == storagev1alpha1.ReplicaLost)
	})
	waitAcked(t, s, before+200)
	if r := s.result(); r.failed > 0 {
		t.Fatalf("a write failed after the kill: %v", r.errs)
	}
	// After the delay the copy is replaced on the spare Store and rebuilt there.
	final := rc.waitVolume(t, vol.Name, "three copies InSync, one on the spare Store", func(v *storagev1alpha1.Volume) bool {
		return inSyncCount(v) == 3 && replicaState(v, spare) == storagev1alpha1.ReplicaInSync && !isDegraded(v)
	})
	rebuiltIn := time.Since(killedAt)
	waitAcked(t, s, s.result().acked+50) // the stream goes on over the new copy
	res := s.stop()
	if res.failed > 0 {
		t.Fatalf("%d writes or flushes failed: %v", res.failed, res.errs)
	}
	if err := be.Flush(context.Background()); err != nil {
		t.Fatalf("flush: %v", err)
	}
	rebuilt, err := replStat(coord, spare)
	if err != nil {
		t.Fatal(err)
	}
	if rebuilt.SyncedBytes[replvol.KindRebuild] == 0 || rebuilt.ComparedBytes == 0 {
		t.Fatalf("the copy on the spare Store was not rebuilt and compared: %+v", rebuilt)
	}
	verifyThroughCoordinator(t, be, m)
	copies, _ := rc.compareCopies(t, vol.Name, m)
	if copies != 3 {
		t.Fatalf("compared %d copies, want 3 (%s)", copies, replicaSummary(final))
	}
	t.Logf("fault SIGKILL replica daemon: count 1, acknowledged writes verified %d (flushes %d), lost 0, copies compared equal %d, "+
		"rebuild copied %d bytes, compared %d bytes, replaced and in sync %s after the kill",
		res.acked, res.flushes, copies, rebuilt.SyncedBytes[replvol.KindRebuild], rebuilt.ComparedBytes, rebuiltIn.Round(time.Millisecond))
}

// waitAcked waits until the stream has n acknowledged writes, and fails if it stops writing (a
// writer gave up on an error).
func waitAcked(t *testing.T, s *stream, n int) {
	t.Helper()
	gomega.NewWithT(t).Eventually(func() error {
		r := s.result()
		if r.failed > 0 {
			return gomega.StopTrying(fmt.Sprintf("the write stream failed after %d acknowledged writes: %v", r.acked, r.errs))
		}
		if r.acked < n {
			return fmt.Errorf("%d acknowledged writes, want %d", r.acked, n)
		}
		return nil
	}, 2*time.Minute, 20*time.Millisecond).Should(gomega.Succeed())
}

// verifyThroughCoordinator reads the whole volume through be and checks it against the model.
func verifyThroughCoordinator(t *testing.T, be interface {
	ReadAt(context.Context, []byte, int64) error
}, m *model) {
	t.Helper()
	data := make([]byte, replVolumeSize)
	const chunk = 1 << 20
	for off := int64(0); off < replVolumeSize; off += chunk {
		if err := be.ReadAt(context.Background(), data[off:off+chunk], off); err != nil {
			t.Fatalf("read through the coordinator at %d: %v", off, err)
		}
	}
	if _, err := m.verify(data); err != nil {
		t.Fatalf("through the coordinator: %v", err)
	}
}

// spareStore returns the Store of this cluster that holds no copy of vol.
func (rc *replCluster) spareStore(t *testing.T, vol *storagev1alpha1.Volume) string {
	t.Helper()
	for _, n := range rc.nodes {
		st := rc.store(t, n)
		if replicaState(vol, st.Name) == "" {
			return st.Name
		}
	}
	t.Fatal("every Store holds a copy")
	return ""
}
