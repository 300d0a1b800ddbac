package integration

import (
	"fmt"
	"strings"
	"time"

	"github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/node-daemon/internal/eiodev"
)

// deviceFail: the device under a copy's Store fails while its daemon keeps running: its loop
// device shrinks to nothing (failLoopDevice: every write then fails with ENOSPC and every read
// ends early, also through the file descriptor the daemon holds; the data is gone). What must
// follow is deviceFailed's. Then the disk is swapped for a blank one of the same size at the same
// path (the backing file grown back: zeros) and the daemon restarted: it makes a new store on it,
// the next spare. Only copies on nodes whose device is a loop device over a plain file are picked.
func (s *soak) deviceFail(r *roundResult) {
	t := s.t
	store, n := s.pickCopyOn(func(n *replNode) bool { return n.eio == nil })
	spare := s.rc.spareStore(t, s.rc.volume(t, s.name))
	s.forgetCopy(spare)
	if err := failLoopDevice(n.device, n.backing); err != nil {
		t.Fatalf("%s: fail the device of %s: %v", s.current, n.name, err)
	}
	dropped, why, crash := s.deviceFailed(faultDeviceFail, store, spare, n)
	if err := resizeLoopDevice(n.device, n.backing, replDeviceSize); err != nil {
		t.Fatalf("%s: give %s a blank device: %v", s.current, n.name, err)
	}
	s.rc.restart(t, n)
	r.synced = true
	r.what = fmt.Sprintf("the device of %s (copy on %s) failed under its daemon: dropped (%s)%s; Store not Ready: %q; replaced on %s and rebuilt; the daemon restarted on a blank device",
		n.name, store, strings.TrimSpace(dropped), crash, why, spare)
}

// deviceEIO: the device under a copy's Store starts failing with EIO while its daemon keeps
// running: the device is an eiodev loop device served by this process, and its switch is flipped
// (at random: every I/O fails, or writes and flushes only, reads still served). The daemon's
// reads, writes and flushes get a real EIO from the block layer, through the descriptor it holds.
// What must follow is deviceFailed's, and the device must have failed I/O of the daemon. Then
// the disk is made a blank one (the backing file's contents discarded, the switch healed) and the
// daemon restarted: it makes a new store on it, the next spare. Only copies on nodes whose device
// is an EIO device are picked.
func (s *soak) deviceEIO(r *roundResult) {
	t := s.t
	store, n := s.pickCopyOn(func(n *replNode) bool { return n.eio != nil })
	spare := s.rc.spareStore(t, s.rc.volume(t, s.name))
	s.forgetCopy(spare)
	mode := eiodev.FailAll
	if s.rng.IntN(2) == 0 {
		mode = eiodev.FailWrites
	}
	be := n.eio.Backend()
	before := be.Failures()
	be.SetMode(mode)
	dropped, why, crash := s.deviceFailed(faultDeviceEIO, store, spare, n)
	failed := be.Failures()
	failed = eiodev.Failures{Reads: failed.Reads - before.Reads, Writes: failed.Writes - before.Writes,
		Flushes: failed.Flushes - before.Flushes, Trims: failed.Trims - before.Trims}
	if failed.Total() == 0 {
		t.Fatalf("%s: the Store of %s was retired but its EIO device failed no I/O", s.current, n.name)
	}
	row := &s.rows[faultDeviceEIO]
	row.eioFailed.Reads += failed.Reads
	row.eioFailed.Writes += failed.Writes
	row.eioFailed.Flushes += failed.Flushes
	row.eioFailed.Trims += failed.Trims
	if err := n.eio.Blank(); err != nil {
		t.Fatalf("%s: give %s a blank device: %v", s.current, n.name, err)
	}
	be.SetMode(eiodev.Healthy)
	s.rc.restart(t, n)
	r.synced = true
	r.what = fmt.Sprintf("the device of %s (copy on %s) failed with EIO under its daemon (%s; failed %d reads, %d writes, %d flushes, %d trims): dropped (%s)%s; Store not Ready: %q; "+
		"replaced on %s and rebuilt; the daemon restarted on a blank device",
		n.name, store, mode, failed.Reads, failed.Writes, failed.Flushes, failed.Trims, strings.TrimSpace(dropped), crash, why, spare)
}

// deviceFailed checks what must follow the failure of node n's device under the copy on store
// (a fault of kind): the coordinator drops the copy (the Volume's status shows it out of sync and
// the Volume Degraded, while the stream's writes all succeed: a write failed to the stream fails
// the round); the daemon stops serving the store and its Store says why (notUsedReason: the device
// failed, with the I/O error; not Ready); after the replacement delay the copy is replaced on the
// spare Store and rebuilt there. The daemon must not crash: the metadata database of the failed
// store stops instead of panicking (storage-engine/kv's fail-stop). A crash fails the test; it is
// logged with its panic and counted in kind's row, and the round goes on as a DaemonSet's restart
// would: the daemon started again on the dead device must report it unused. It returns with the daemon stopped (or crashed), and the
// Volume's copies when the copy was dropped, the Store's reason and what crashed.
func (s *soak) deviceFailed(kind faultKind, store, spare string, n *replNode) (dropped, why, crash string) {
	t := s.t
	gomega.NewWithT(t).Eventually(func() error {
		v := s.rc.volume(t, s.name)
		switch st := replicaState(v, store); {
		case st == "":
			return gomega.StopTrying(fmt.Sprintf("the copy on %s was replaced before it was seen out of sync and the Volume Degraded", store))
		case st == storagev1alpha1.ReplicaInSync || !isDegraded(v):
			return fmt.Errorf("the copy on %s is %s, conditions %s", store, st, conditionSummary(v))
		}
		dropped = replicaSummary(v)
		return nil
	}, soakSettle, 20*time.Millisecond).Should(gomega.Succeed(), "%s: the copy on the failed device is dropped and the Volume Degraded", s.current)
	// The running daemon takes the store out of service and says why; if it crashed instead (a
	// failure), the test starts it again on the dead device, as its DaemonSet would, which it must
	// report unused.
	gomega.NewWithT(t).Eventually(func() error {
		select {
		case <-n.proc.exited:
			crash = fmt.Sprintf("the daemon exited (%v): %s", n.proc.err, n.proc.panicLine())
			return nil
		default:
		}
		st := s.rc.store(t, n)
		why = st.Status.NotUsedReason
		if isReady(st.Status.Conditions) || !strings.Contains(why, "the device failed at ") {
			return fmt.Errorf("Store %s: Ready %t, notUsedReason %q, engine %s %q", st.Name, isReady(st.Status.Conditions), why, st.Status.EngineHealth, st.Status.EngineMessage)
		}
		return nil
	}, soakSettle, 100*time.Millisecond).Should(gomega.Succeed(), "%s: the Store of the failed device is not Ready and says why", s.current)
	if crash != "" {
		t.Errorf("%s: the daemon crashed after its device failed: %s", s.current, crash)
		s.rows[kind].crashes++
		crash = "; " + crash + ", restarted on the dead device"
		fresh := time.Now().Truncate(time.Second).Add(time.Second)
		n.proc = startProc(t, n.cfg)
		gomega.NewWithT(t).Eventually(func() error {
			st := s.rc.store(t, n)
			why = st.Status.NotUsedReason
			if isReady(st.Status.Conditions) || why == "" || st.Status.LastHeartbeat == nil || st.Status.LastHeartbeat.Before(&metav1.Time{Time: fresh}) {
				return fmt.Errorf("Store %s of the daemon restarted on the dead device: Ready %t, notUsedReason %q, heartbeat %v", st.Name, isReady(st.Status.Conditions), why, st.Status.LastHeartbeat)
			}
			return nil
		}, soakSettle, 100*time.Millisecond).Should(gomega.Succeed(), "%s: the daemon restarted on the dead device reports it unused", s.current)
	}
	s.settle(s.replacedOn(store, spare, kind))
	select {
	case <-n.proc.exited: // it crashed after it took the store out of service, or after its restart
		late := fmt.Sprintf("the daemon exited (%v) after the Store said why: %s", n.proc.err, n.proc.panicLine())
		t.Errorf("%s: the daemon crashed after its device failed: %s", s.current, late)
		s.rows[kind].crashes++
		crash += "; " + late
	default:
		if _, err := n.proc.terminate(t, time.Minute); err != nil {
			select {
			case <-n.proc.exited: // it exited, with an error
			default:
				t.Fatalf("%s: stop the daemon of %s: %v", s.current, n.name, err)
			}
		}
	}
	return dropped, why, crash
}
