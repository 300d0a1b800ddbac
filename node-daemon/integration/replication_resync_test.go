package integration

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/onsi/gomega"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/node-daemon/replica"
	"github.com/cobaltstore/cobalt/node-daemon/replvol"
)

// resyncSpan is how much of each writer's lane the stream writes while a copy's daemon is
// stopped: the dirty regions then cover at most streamWriters*resyncSpan rounded out to regions.
const resyncSpan = 256 << 10

// TestReplicationStoppedReplicaResyncsDirtyRegions: a Volume of three copies is written all over
// by a verified stream; one copy's daemon is stopped (SIGSTOP) while the stream writes only a
// small part of the volume. The coordinator drops the copy after its replica timeout and goes on,
// the operator sees the Store not Ready (Lost); the daemon is resumed well within the replacement
// delay, the copy comes back CatchingUp and is resynced: only its dirty regions are copied (no
// rebuild), it is InSync again, the Volume is not Degraded, and the three copies compare equal to
// the acknowledged writes.
func TestReplicationStoppedReplicaResyncsDirtyRegions(t *testing.T) {
	rc := newReplCluster(t, 10*time.Minute)
	vol := rc.createVolume(t, "paused", 3)
	coordNode := vol.Status.Replicas[0].Node
	gen := rc.publish(t, vol.Name, coordNode)
	coord := rc.coordinator(t, coordNode, 500*time.Millisecond)
	be := rc.open(t, coord, vol, gen)
	t.Cleanup(func() { _ = be.Close(context.Background()) })

	m := newModel()
	seed := uint64(time.Now().UnixNano())
	full := startStream(be, m, streamOptions{tag: 1, seed: seed, stopOnError: true})
	waitAcked(t, full, 400)
	fullRes := full.stop()

	victimStore := vol.Status.Replicas[2].Store
	victim := rc.nodeOfStore(t, victimStore)
	victim.signal(t, syscall.SIGSTOP)
	resumed := false
	t.Cleanup(func() {
		if !resumed {
			victim.signal(t, syscall.SIGCONT) // so that the daemon can be killed and its device detached
		}
	})
	stoppedAt := time.Now()
	narrow := startStream(be, m, streamOptions{tag: 2, seed: seed + 1, stopOnError: true, span: resyncSpan})
	rc.waitVolume(t, vol.Name, "the stopped copy Lost", func(v *storagev1alpha1.Volume) bool {
		return replicaState(v, victimStore) == storagev1alpha1.ReplicaLost && isDegraded(v)
	})
	waitAcked(t, narrow, 200) // writes go on without the stopped copy
	var dirty int64
	gomega.NewWithT(t).Eventually(func() error {
		st, err := replStat(coord, victimStore)
		if err != nil {
			return err
		}
		if dirty = st.DirtyBytes; dirty == 0 {
			return fmt.Errorf("the stopped copy has no dirty regions: %+v", st)
		}
		return nil
	}, time.Minute, 50*time.Millisecond).Should(gomega.Succeed())

	victim.signal(t, syscall.SIGCONT)
	resumed = true
	stoppedFor := time.Since(stoppedAt)
	rc.waitVolume(t, vol.Name, "the resumed copy resynced and InSync", func(v *storagev1alpha1.Volume) bool {
		return inSyncCount(v) == 3 && replicaState(v, victimStore) == storagev1alpha1.ReplicaInSync && !isDegraded(v)
	})
	resyncedIn := time.Since(stoppedAt) - stoppedFor
	narrowRes := narrow.stop()
	if narrowRes.failed > 0 {
		t.Fatalf("%d writes or flushes failed: %v", narrowRes.failed, narrowRes.errs)
	}
	if err := be.Flush(context.Background()); err != nil {
		t.Fatalf("flush: %v", err)
	}
	st, err := replStat(coord, victimStore)
	if err != nil {
		t.Fatal(err)
	}
	resynced, rebuilt := st.SyncedBytes[replvol.KindResync], st.SyncedBytes[replvol.KindRebuild]
	// The stream wrote only the first resyncSpan bytes of each lane while the copy was away:
	// at most one region (two when a lane's span straddles a boundary) per lane is dirty.
	maxDirty := int64(streamWriters) * 2 * replica.DefaultRegionSize
	if rebuilt != 0 || resynced == 0 || resynced > maxDirty {
		t.Fatalf("the returning copy: resync copied %d bytes, rebuild %d; want a resync of at most the %d bytes of dirty regions and no rebuild",
			resynced, rebuilt, maxDirty)
	}
	verifyThroughCoordinator(t, be, m)
	copies, _ := rc.compareCopies(t, vol.Name, m)
	if copies != 3 {
		t.Fatalf("compared %d copies, want 3", copies)
	}
	t.Logf("fault SIGSTOP replica daemon %s, SIGCONT within the replacement delay: count 1, acknowledged writes verified %d (before %d, while stopped %d), lost 0, "+
		"dirty %d bytes when resumed, resync copied %d bytes, compared %d bytes, rebuild 0 bytes (volume %d bytes), in sync %s after SIGCONT, copies compared equal %d",
		stoppedFor.Round(time.Millisecond), fullRes.acked+narrowRes.acked, fullRes.acked, narrowRes.acked,
		dirty, resynced, st.ComparedBytes, replVolumeSize, resyncedIn.Round(time.Millisecond), copies)
}
