package integration

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/node-daemon/internal/eiodev"
	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
)

// TestDeviceFailingUnderTheDaemonStopsOnlyItsStore: one node daemon (a process) serves two
// stores; the device under one of them starts failing every write and flush with a real EIO
// while eight writers overwrite a Volume on it. Every writer gets an error; the daemon does not
// crash: the failed device's Store turns not Ready saying why, the other store keeps taking
// writes and reads, and the daemon stops cleanly on SIGTERM. Healed and restarted, the daemon
// mounts the failed device's store again with the last acknowledged data of every block (the
// blocks of the failed writes may hold either version). This run rarely meets pebble's fatal
// paths (store's and kv's fail-stop tests do, deterministically); the replication soak's
// device-eio fault repeats it at random points.
func TestDeviceFailingUnderTheDaemonStopsOnlyItsStore(t *testing.T) {
	if !eioDevices() {
		t.Skip("needs root, losetup and /dev/fuse")
	}
	c := newCluster(t)
	ctx := context.Background()
	failing := newEIODevice(t, 256<<20)
	healthy := newDevice(t, 256<<20, 0, nil)
	const node = "node-eio-running"
	cfg := c.daemonConfig(t, node, failing.Path(), healthy)
	p := startProc(t, cfg)
	c.startOperator(t)
	fst := servingStore(t, node, failing.Path(), "")
	hst := servingStore(t, node, healthy, "")

	// volumeOn creates a Volume on st and returns a client of its node and its reference.
	volumeOn := func(name string, st *storagev1alpha1.Store) *nodepb.VolumeRef {
		t.Helper()
		vol := &storagev1alpha1.Volume{ObjectMeta: metav1.ObjectMeta{Namespace: c.namespace, Name: name},
			Spec: storagev1alpha1.VolumeSpec{Size: resource.MustParse("64Mi"), VolumeMode: storagev1alpha1.VolumeModeBlock, Replicas: 1, StoreName: st.Name}}
		if err := k8sClient.Create(ctx, vol); err != nil {
			t.Fatalf("create Volume %s: %v", name, err)
		}
		gomega.NewWithT(t).Eventually(func() error {
			if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: c.namespace, Name: name}, vol); err != nil {
				return err
			}
			if !isReady(vol.Status.Conditions) {
				return fmt.Errorf("volume %s not Ready: %+v", name, vol.Status.Conditions)
			}
			return nil
		}, time.Minute, 100*time.Millisecond).Should(gomega.Succeed())
		return &nodepb.VolumeRef{StoreUuid: st.Status.UUID, VolumeId: vol.NodeVolumeID()}
	}
	fref, href := volumeOn("on-failing", fst), volumeOn("on-healthy", hst)
	cl := c.client(t, fst.Annotations[storagev1alpha1.AnnotationNodeEndpoint])

	// The first 32 MiB of the failing device's Volume are written once, then 8 writers overwrite
	// random 4 KiB blocks of it (writer w the blocks b with b%8 == w, so the last acknowledged
	// data of each block is known). Small overwrites are deferred: their data goes through the
	// metadata database's write-ahead log, and concurrent ones keep pebble's commit pipeline busy
	// when the device fails under it.
	const span, writers = 32 << 20, 8
	base := make([]byte, span)
	_, _ = rand.NewChaCha8([32]byte{3}).Read(base)
	if n, err := cl.WriteFrom(ctx, fref, 0, bytes.NewReader(base)); err != nil || n != span {
		t.Fatalf("WriteFrom = %d, %v", n, err)
	}
	acked := make([]map[int64][]byte, writers) // per writer: offset -> last acknowledged data
	uncertain := map[int64]bool{}              // the blocks of the writes that failed
	failed := make([]error, writers)
	var wrote [writers]int
	var stop atomic.Bool
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range writers {
		acked[w] = map[int64][]byte{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.NewChaCha8([32]byte{byte(w), 5})
			for !stop.Load() {
				off := (int64(rng.Uint64()%(span/4096/writers))*writers + int64(w)) * 4096
				data := make([]byte, 4096)
				_, _ = rng.Read(data)
				if _, err := cl.Volumes.Write(ctx, &nodepb.WriteRequest{Ref: fref, Offset: off, Data: data}); err != nil {
					failed[w] = err
					mu.Lock()
					uncertain[off] = true // not acknowledged: the block may hold either version
					mu.Unlock()
					return
				}
				acked[w][off] = data
				wrote[w]++
			}
		}()
	}
	time.Sleep(2 * time.Second)
	failing.Backend().SetMode(eiodev.FailWrites)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		stop.Store(true)
		t.Fatal("writers still running a minute after the device failed")
	}
	for w, err := range failed {
		if err == nil {
			t.Fatalf("writer %d: no write failed after the device failed", w)
		}
	}
	t.Logf("the writers stopped at their first failed write, e.g. %v", failed[0])

	var why string
	gomega.NewWithT(t).Eventually(func() error {
		select {
		case <-p.exited:
			return gomega.StopTrying(fmt.Sprintf("the daemon exited (%v): %s", p.err, p.panicLine()))
		default:
		}
		s, err := storeOf(node, failing.Path())
		if err != nil {
			return err
		}
		why = s.Status.NotUsedReason
		if isReady(s.Status.Conditions) || !strings.Contains(why, "the device failed at ") {
			return fmt.Errorf("Store %s: Ready %t, notUsedReason %q", s.Name, isReady(s.Status.Conditions), why)
		}
		return nil
	}, time.Minute, 100*time.Millisecond).Should(gomega.Succeed(), "the failed device's Store is not Ready and says why")
	t.Logf("the failed device's Store says %q", why)

	for i := range 200 {
		if _, err := cl.Volumes.Write(ctx, &nodepb.WriteRequest{Ref: href, Offset: int64(i) * 4096, Data: base[:4096]}); err != nil {
			t.Fatalf("write on the other store after the failure: %v", err)
		}
	}
	if r, err := cl.Volumes.Read(ctx, &nodepb.ReadRequest{Ref: href, Offset: 0, Length: 1 << 20}); err != nil || len(r.Data) != 1<<20 {
		t.Fatalf("read on the other store after the failure: %v", err)
	}
	if _, err := cl.Volumes.Write(ctx, &nodepb.WriteRequest{Ref: fref, Offset: 0, Data: make([]byte, 4096)}); err == nil {
		t.Fatal("a write on the failed device's store succeeded after it was taken out of service")
	}
	select {
	case <-p.exited:
		t.Fatalf("the daemon exited (%v): %s", p.err, p.panicLine())
	default:
	}
	if took, err := p.terminate(t, time.Minute); err != nil {
		t.Fatalf("SIGTERM after the failure: %v after %s; %s", err, took, p.panicLine())
	}
	if line := p.panicLine(); line != "no panic in its log" {
		t.Fatalf("the daemon's log has a panic: %s", line)
	}

	failing.Backend().SetMode(eiodev.Healthy)
	fresh := time.Now().Truncate(time.Second).Add(time.Second)
	startProc(t, cfg)
	var st *storagev1alpha1.Store
	gomega.NewWithT(t).Eventually(func() error {
		var err error
		if st, err = storeOf(node, failing.Path()); err != nil {
			return err
		}
		if !isReady(st.Status.Conditions) || st.Status.LastHeartbeat == nil || st.Status.LastHeartbeat.Before(&metav1.Time{Time: fresh}) {
			return fmt.Errorf("Store %s: Ready %t, notUsedReason %q, heartbeat %v", st.Name, isReady(st.Status.Conditions), st.Status.NotUsedReason, st.Status.LastHeartbeat)
		}
		return nil
	}, time.Minute, 100*time.Millisecond).Should(gomega.Succeed(), "the restarted daemon serves the healed device's store")
	if st.Status.UUID != fst.Status.UUID {
		t.Fatalf("the healed device serves store %s, want %s", st.Status.UUID, fst.Status.UUID)
	}
	cl = c.client(t, st.Annotations[storagev1alpha1.AnnotationNodeEndpoint])
	checked := 0
	for off := int64(0); off < span; off += 4096 {
		if uncertain[off] {
			continue
		}
		want, ok := acked[int(off/4096)%writers][off]
		if !ok {
			want = base[off : off+4096]
		}
		r, err := cl.Volumes.Read(ctx, &nodepb.ReadRequest{Ref: fref, Offset: off, Length: 4096})
		if err != nil {
			t.Fatalf("read %d after the restart: %v", off, err)
		}
		if !bytes.Equal(r.Data, want) {
			t.Fatalf("acknowledged data at %d lost after the failure and the restart", off)
		}
		checked++
	}
	t.Logf("%d writes acknowledged before the failure; all %d blocks of the span hold their last acknowledged data after the restart (%d uncertain blocks skipped)",
		wrote[0]+wrote[1]+wrote[2]+wrote[3]+wrote[4]+wrote[5]+wrote[6]+wrote[7], checked, span/4096-checked)
}
