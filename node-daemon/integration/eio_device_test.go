package integration

import (
	"fmt"
	"testing"
	"time"

	"github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cobaltstore/cobalt/node-daemon/internal/eiodev"
)

// TestDaemonStartedOnAFailingDeviceReportsItUnused: the node daemon (a process) started on a
// device that fails with a real EIO, as a DaemonSet restarts it after the device failed under
// it, neither crashes nor serves the store: its Store is not Ready and says why, whether every
// I/O fails or only writes and flushes (the store's label and metadata still read). The failed
// I/O changed nothing on the device: healed, the daemon serves the same store again.
func TestDaemonStartedOnAFailingDeviceReportsItUnused(t *testing.T) {
	if !eioDevices() {
		t.Skip("needs root, losetup and /dev/fuse")
	}
	c := newCluster(t)
	dev := newEIODevice(t, 256<<20)
	const node = "node-eio"
	cfg := c.daemonConfig(t, node, dev.Path())
	p := startProc(t, cfg)
	st := servingStore(t, node, dev.Path(), "")
	uuid := st.Status.UUID
	stop := func() {
		t.Helper()
		if _, err := p.terminate(t, time.Minute); err != nil {
			t.Fatalf("stop the daemon: %v", err)
		}
	}
	stop()

	for _, mode := range []eiodev.Mode{eiodev.FailWrites, eiodev.FailAll} {
		before := dev.Backend().Failures().Total()
		dev.Backend().SetMode(mode)
		fresh := time.Now().Truncate(time.Second).Add(time.Second)
		p = startProc(t, cfg)
		var why string
		gomega.NewWithT(t).Eventually(func() error {
			select {
			case <-p.exited:
				return gomega.StopTrying(fmt.Sprintf("the daemon started on a device where %s exited (%v): %s", mode, p.err, p.panicLine()))
			default:
			}
			s, err := storeOf(node, dev.Path())
			if err != nil {
				return err
			}
			why = s.Status.NotUsedReason
			if isReady(s.Status.Conditions) || why == "" || s.Status.LastHeartbeat == nil || s.Status.LastHeartbeat.Before(&metav1.Time{Time: fresh}) {
				return fmt.Errorf("Store %s: Ready %t, notUsedReason %q, heartbeat %v", s.Name, isReady(s.Status.Conditions), why, s.Status.LastHeartbeat)
			}
			return nil
		}, time.Minute, 100*time.Millisecond).Should(gomega.Succeed(), "the Store of a device where %s is not Ready and says why", mode)
		if dev.Backend().Failures().Total() == before {
			t.Fatalf("%s: the daemon reported the device unused (%q) without any of its I/O failing", mode, why)
		}
		t.Logf("%s: the Store says %q", mode, why)
		stop()
	}

	dev.Backend().SetMode(eiodev.Healthy)
	p = startProc(t, cfg)
	if st := servingStore(t, node, dev.Path(), ""); st.Status.UUID != uuid {
		t.Fatalf("the healed device serves store %s, want the store %s it held", st.Status.UUID, uuid)
	}
}
