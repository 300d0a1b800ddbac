package integration

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
)

// TestSIGTERMShutsDownCleanly: with writes in flight, SIGTERM makes the daemon stop accepting,
// finish the calls it has, unmount and exit 0 within the grace period; the exec probe reports it
// serving before and failing after; every acknowledged write survives, and the next mount needs
// no replay.
func TestSIGTERMShutsDownCleanly(t *testing.T) {
	c := newCluster(t)
	dev := newDevice(t, 256<<20, 0, nil)
	cfg := c.daemonConfig(t, "node-t", dev)
	ctx := context.Background()
	p := startProc(t, cfg)
	st := servingStore(t, "node-t", dev, "")
	endpoint := st.Annotations["storage.cobalt.io/node-endpoint"]
	cl := c.client(t, endpoint)
	ref := &nodepb.VolumeRef{StoreUuid: st.Status.UUID, VolumeId: "term"}
	if _, err := cl.Volumes.CreateVolume(ctx, &nodepb.CreateVolumeRequest{Ref: ref, SizeBytes: 64 << 20}); err != nil {
		t.Fatal(err)
	}
	probe := func() (string, error) {
		out, err := exec.Command(daemonBin, "health", "--socket", cfg.StateDir+"/node-daemon.sock").CombinedOutput()
		return string(out), err
	}
	if out, err := probe(); err != nil || !strings.Contains(out, "SERVING") {
		t.Fatalf("health probe before SIGTERM: %v: %s", err, out)
	}

	const writers = 16
	chunk := func(i int) []byte { return bytes.Repeat([]byte{byte(i + 1)}, 2<<20) }
	var wg sync.WaitGroup
	acked := make([]bool, writers)
	errs := make([]error, writers)
	started := make(chan struct{}, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			started <- struct{}{}
			_, errs[i] = cl.Volumes.Write(ctx, &nodepb.WriteRequest{Ref: ref, Offset: int64(i) * (2 << 20), Data: chunk(i)})
			acked[i] = errs[i] == nil
		}()
	}
	for range writers {
		<-started
	}
	took, err := p.terminate(t, cfg.ShutdownGrace+10*time.Second)
	if err != nil {
		t.Fatalf("daemon exit after SIGTERM: %v (after %s)", err, took)
	}
	wg.Wait()
	nAcked := 0
	for i, err := range errs {
		if err == nil {
			nAcked++
			continue
		}
		if code := status.Code(err); code != codes.Unavailable && code != codes.Canceled {
			t.Fatalf("write %d failed with %v, want success or Unavailable", i, err)
		}
	}
	if _, err := probe(); err == nil {
		t.Fatal("health probe succeeds after the daemon exited")
	}
	if replayed := fsckDevice(t, dev); replayed != 0 {
		t.Fatalf("%d deferred writes replayed: the shutdown was not clean", replayed)
	}
	startProc(t, cfg)
	st = servingStore(t, "node-t", dev, endpoint)
	cl = c.client(t, st.Annotations["storage.cobalt.io/node-endpoint"])
	for i := range writers {
		if !acked[i] {
			continue
		}
		got, err := cl.Volumes.Read(ctx, &nodepb.ReadRequest{Ref: ref, Offset: int64(i) * (2 << 20), Length: 2 << 20})
		if err != nil || !bytes.Equal(got.GetData(), chunk(i)) {
			t.Fatalf("acknowledged write %d lost after SIGTERM (err %v)", i, err)
		}
	}
	t.Logf("SIGTERM: exit 0 after %s with %d of %d writes in flight acknowledged", took.Round(time.Millisecond), nAcked, writers)
}
