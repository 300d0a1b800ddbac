package replvol

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
	nodeclient "github.com/cobaltstore/cobalt/node-daemon/client"
	"github.com/cobaltstore/cobalt/node-daemon/csinode"
	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
	"github.com/cobaltstore/cobalt/node-daemon/replica"
)

// never is a sync interval the tests outlast: they drive the loop with syncOnce.
const never = time.Hour

func TestNewValidatesOptions(t *testing.T) {
	h := newHarness(t, 1)
	full := Options{Client: h.client, APIReader: h.client, NodeName: "n", Node: h.nodes[0].replicas(), Local: func(string) bool { return false }, Dialer: h.dialer}
	tests := []struct {
		name  string
		edit  func(*Options)
		wantE string
	}{
		{"complete", func(*Options) {}, ""},
		{"no client", func(o *Options) { o.Client = nil }, "Client is required"},
		{"no reader", func(o *Options) { o.APIReader = nil }, "APIReader is required"},
		{"no node name", func(o *Options) { o.NodeName = "" }, "NodeName is required"},
		{"no node", func(o *Options) { o.Node = nil }, "Node is required"},
		{"no local", func(o *Options) { o.Local = nil }, "Local is required"},
		{"no dialer", func(o *Options) { o.Dialer = nil }, "Dialer is required"},
		{"negative interval", func(o *Options) { o.SyncInterval = -1 }, "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := full
			tt.edit(&o)
			v, err := New(o)
			if tt.wantE == "" {
				if err != nil || v.opts.SyncInterval != DefaultSyncInterval || v.opts.ReplicaTimeout != replica.DefaultReplicaTimeout {
					t.Fatalf("New = %v, options %+v; want defaults filled in", err, v.opts)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantE) {
				t.Fatalf("New = %v, want an error saying %q", err, tt.wantE)
			}
		})
	}
}

// TestOpenWritesEveryCopy opens volumes of 2 and 3 copies: writes, trims and flushes reach every
// copy, reads come back, Size is the smallest allocation, and the stats list every copy InSync.
func TestOpenWritesEveryCopy(t *testing.T) {
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d copies", n), func(t *testing.T) {
			h := newHarness(t, n)
			var copies []copySpec
			for i := range n {
				copies = append(copies, copySpec{node: i, inSpec: true, state: v1alpha1.ReplicaInSync})
			}
			h.createVolume(t, 4, copies...)
			v := h.volumes(t, never)
			ctx := context.Background()
			be, size, err := v.Open(ctx, openReq(4))
			if err != nil {
				t.Fatal(err)
			}
			if size != testVolSize {
				t.Fatalf("size = %d, want %d", size, testVolSize)
			}
			data := pattern(1, 64<<10)
			if err := be.WriteAt(ctx, data, 3<<20); err != nil {
				t.Fatal(err)
			}
			if err := be.Trim(ctx, 3<<20, 4096); err != nil {
				t.Fatal(err)
			}
			if err := be.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			want := append(make([]byte, 4096), data[4096:]...)
			got := make([]byte, len(data))
			if err := be.ReadAt(ctx, got, 3<<20); err != nil || string(got) != string(want) {
				t.Fatalf("read back: %v (equal: %v)", err, string(got) == string(want))
			}
			for i := range n {
				h.checkCopy(t, i, 4, 3<<20, want)
			}
			if s, err := be.Size(ctx); err != nil || s != testVolSize {
				t.Fatalf("Size = %d, %v", s, err)
			}
			stats := v.ReplicationStats()
			if len(stats) != n {
				t.Fatalf("%d stats, want %d: %+v", len(stats), n, stats)
			}
			for _, s := range stats {
				if s.State != string(v1alpha1.ReplicaInSync) || s.Generation != 4 || s.DirtyBytes != 0 || s.Volume != testNS+"/"+testVolume {
					t.Fatalf("stat %+v, want InSync at generation 4 with nothing dirty", s)
				}
			}
			if err := be.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if err := be.Close(ctx); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if len(v.ReplicationStats()) != 0 {
				t.Fatal("a closed volume still has stats")
			}
		})
	}
}

// TestFailedWriteDropsCopyFirst: a remote copy that fails a write is CatchingUp in the Volume's
// status, with why, by the time the write returns.
func TestFailedWriteDropsCopyFirst(t *testing.T) {
	h := newHarness(t, 3)
	h.createVolume(t, 1, copySpec{0, true, v1alpha1.ReplicaInSync}, copySpec{1, true, v1alpha1.ReplicaInSync}, copySpec{2, true, v1alpha1.ReplicaInSync})
	v := h.volumes(t, never)
	b := h.open(t, v, 1)
	ctx := context.Background()
	h.dialer.setDown(h.nodes[2].env.Addr, true)
	if err := b.WriteAt(ctx, pattern(2, 4096), 0); err != nil {
		t.Fatalf("write with one copy down: %v", err)
	}
	c := h.copyStatus(t, 2)
	if c.State != v1alpha1.ReplicaCatchingUp || !strings.Contains(c.Message, "dropped from the in-sync set by node node-a (generation 1)") || !strings.Contains(c.Message, "write at 0") {
		t.Fatalf("copy after the failed write = %+v, want CatchingUp saying why", c)
	}
	if vol := h.volume(t); vol.Status.InSyncReplicas != 2 {
		t.Fatalf("inSyncReplicas = %d, want 2", vol.Status.InSyncReplicas)
	}
	for _, i := range []int{0, 1} {
		if c := h.copyStatus(t, i); c.State != v1alpha1.ReplicaInSync {
			t.Fatalf("copy %d = %+v, want InSync", i, c)
		}
	}
	if s := stat(t, v, h.nodes[2].store); s.DirtyBytes != regionSize || s.State != string(v1alpha1.ReplicaCatchingUp) {
		t.Fatalf("stat of the dropped copy = %+v, want one dirty region", s)
	}
	h.expectEvent(t, corev1.EventTypeWarning, EventReplicaDropped, h.nodes[2].store, "dropped from the in-sync set by node node-a (generation 1)", "write at 0")
}

// TestDropRefusedWhenFenced: once the Volume is attached at a newer generation, a drop is not
// recorded, so the write that needed it fails and the copy stays InSync in status.
func TestDropRefusedWhenFenced(t *testing.T) {
	h := newHarness(t, 2)
	h.createVolume(t, 1, copySpec{0, true, v1alpha1.ReplicaInSync}, copySpec{1, true, v1alpha1.ReplicaInSync})
	v := h.volumes(t, never)
	be, _, err := v.Open(context.Background(), openReq(1))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	vol := h.volume(t)
	vol.Status.Attachment = &v1alpha1.VolumeAttachmentStatus{Node: "node-z", Generation: 2}
	if err := h.client.Status().Update(ctx, vol); err != nil {
		t.Fatal(err)
	}
	h.dialer.setDown(h.nodes[1].env.Addr, true)
	err = be.WriteAt(ctx, pattern(3, 4096), 0)
	if !errors.Is(err, csinode.ErrFenced) {
		t.Fatalf("write needing a drop while fenced = %v, want ErrFenced", err)
	}
	if c := h.copyStatus(t, 1); c.State != v1alpha1.ReplicaInSync {
		t.Fatalf("copy = %+v, want still InSync (the drop was refused)", c)
	}
	// Close flushes: the copy that is down fails it and its drop is refused too.
	if err := be.Close(ctx); err == nil {
		t.Fatal("Close flushed although a copy failed and the volume is fenced")
	}
	// Said once, although the write and the flush of Close were both refused.
	h.expectEvent(t, corev1.EventTypeWarning, EventFenced, "", "node node-a stopped serving the volume at generation 1", `attached to node "node-z" at generation 2`)
	if got := h.events.withReason(EventReplicaDropped); len(got) != 0 {
		t.Fatalf("drop events while fenced: %+v", got)
	}
}

// TestCatchingUpCopyIsResynced: a copy dropped while its node was down comes back, is resynced
// from the dirty log (only the regions written meanwhile are copied) and is InSync again.
func TestCatchingUpCopyIsResynced(t *testing.T) {
	h := newHarness(t, 3)
	h.createVolume(t, 1, copySpec{0, true, v1alpha1.ReplicaInSync}, copySpec{1, true, v1alpha1.ReplicaInSync}, copySpec{2, true, v1alpha1.ReplicaInSync})
	v := h.volumes(t, never)
	b := h.open(t, v, 1)
	ctx := context.Background()
	before := pattern(4, 256<<10)
	if err := b.WriteAt(ctx, before, 0); err != nil {
		t.Fatal(err)
	}
	down := h.nodes[2]
	h.dialer.setDown(down.env.Addr, true)
	meanwhile := map[int64][]byte{1 << 20: pattern(5, 8192), 5<<20 + 4096: pattern(6, 4096)}
	for off, data := range meanwhile {
		if err := b.WriteAt(ctx, data, off); err != nil {
			t.Fatal(err)
		}
	}
	if s := stat(t, v, down.store); s.DirtyBytes != 2*regionSize {
		t.Fatalf("dirty bytes of the dropped copy = %d, want two regions", s.DirtyBytes)
	}
	// While its node is down the loop says what it waits for.
	b.syncOnce(ctx)
	if c := h.copyStatus(t, 2); c.State != v1alpha1.ReplicaCatchingUp || !strings.Contains(c.Message, "waiting to resync") {
		t.Fatalf("copy while down = %+v, want CatchingUp waiting to resync", c)
	}
	h.dialer.setDown(down.env.Addr, false)
	b.syncOnce(ctx)
	if c := h.copyStatus(t, 2); c.State != v1alpha1.ReplicaInSync || c.Message != "" {
		t.Fatalf("copy after the resync = %+v, want InSync without message", c)
	}
	s := stat(t, v, down.store)
	if s.SyncedBytes[KindResync] != 2*regionSize || s.SyncedBytes[KindRebuild] != 0 || s.ComparedBytes != 2*regionSize || s.DirtyBytes != 0 {
		t.Fatalf("stat after the resync = %+v, want the two dirty regions copied and compared, no rebuild", s)
	}
	h.expectEvent(t, corev1.EventTypeNormal, EventReplicaResynced, down.store, "resync of the copy on store "+down.store+" from "+h.nodes[0].store, "2 MiB copied, 2 MiB compared equal")
	h.checkCopy(t, 2, 1, 0, before)
	for off, data := range meanwhile {
		h.checkCopy(t, 2, 1, off, data)
	}
	// In sync again: it takes the next writes.
	if err := b.WriteAt(ctx, pattern(7, 4096), 7<<20); err != nil {
		t.Fatal(err)
	}
	h.checkCopy(t, 2, 1, 7<<20, pattern(7, 4096))
	if got := b.co.InSync(); len(got) != 3 {
		t.Fatalf("coordinator's in-sync set = %v", got)
	}
}

// TestNewCopyIsRebuilt: a replacement copy the operator created (CatchingUp, empty) is rebuilt by
// the loop, which runs right after Open, and promoted to InSync.
func TestNewCopyIsRebuilt(t *testing.T) {
	h := newHarness(t, 3)
	ctx := context.Background()
	// The two in-sync copies hold data written before this attachment.
	old := pattern(8, 2<<20)
	for _, i := range []int{0, 1} {
		if err := h.nodes[i].replicas().Write(ctx, replica.Ref{StoreUUID: h.nodes[i].uuid, Volume: testUID}, 1, 1<<20, old); err != nil {
			t.Fatal(err)
		}
	}
	h.createVolume(t, 2, copySpec{0, true, v1alpha1.ReplicaInSync}, copySpec{1, true, v1alpha1.ReplicaInSync}, copySpec{2, true, v1alpha1.ReplicaCatchingUp})
	v := h.volumes(t, 50*time.Millisecond)
	b := h.open(t, v, 2)
	if err := b.WriteAt(ctx, pattern(9, 4096), 6<<20); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new copy to be InSync", func() bool { return h.copyStatus(t, 2).State == v1alpha1.ReplicaInSync })
	s := stat(t, v, h.nodes[2].store)
	if s.SyncedBytes[KindRebuild] < int64(len(old)) || s.SyncedBytes[KindResync] != 0 || s.ComparedBytes < int64(len(old)) {
		t.Fatalf("stat after the rebuild = %+v, want at least the %d written bytes rebuilt and compared", s, len(old))
	}
	// The loop writes the event right after the status: wait for it.
	waitFor(t, "the ReplicaRebuilt event", func() bool { return len(h.events.withReason(EventReplicaRebuilt)) > 0 })
	h.expectEvent(t, corev1.EventTypeNormal, EventReplicaRebuilt, h.nodes[2].store, "rebuild of the copy on store "+h.nodes[2].store, "compared equal", "in sync again")
	h.checkCopy(t, 2, 2, 1<<20, old)
	h.checkCopy(t, 2, 2, 6<<20, pattern(9, 4096))
	if vol := h.volume(t); vol.Status.InSyncReplicas != 3 {
		t.Fatalf("inSyncReplicas = %d, want 3", vol.Status.InSyncReplicas)
	}
}

// TestLeavingCopy: a copy whose Store is no longer in the spec is written while InSync, dropped
// when it fails, and never resynced.
func TestLeavingCopy(t *testing.T) {
	h := newHarness(t, 3)
	h.createVolume(t, 1, copySpec{0, true, v1alpha1.ReplicaInSync}, copySpec{1, true, v1alpha1.ReplicaInSync}, copySpec{2, false, v1alpha1.ReplicaInSync})
	v := h.volumes(t, never)
	b := h.open(t, v, 1)
	ctx := context.Background()
	if err := b.WriteAt(ctx, pattern(10, 4096), 0); err != nil {
		t.Fatal(err)
	}
	h.checkCopy(t, 2, 1, 0, pattern(10, 4096))
	h.dialer.setDown(h.nodes[2].env.Addr, true)
	if err := b.WriteAt(ctx, pattern(11, 4096), 0); err != nil {
		t.Fatal(err)
	}
	h.dialer.setDown(h.nodes[2].env.Addr, false)
	b.syncOnce(ctx)
	b.syncOnce(ctx)
	c := h.copyStatus(t, 2)
	if c.State != v1alpha1.ReplicaCatchingUp || !strings.HasPrefix(c.Message, "dropped") {
		t.Fatalf("leaving copy = %+v, want CatchingUp with its drop message, untouched", c)
	}
	if s := stat(t, v, h.nodes[2].store); len(s.SyncedBytes) != 0 {
		t.Fatalf("the leaving copy was synced: %+v", s)
	}
}

// TestOpenErrors covers the refusals of Open.
func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, h *harness) csinode.ReplicatedOpen
		want  error
	}{
		{"no Volume", func(t *testing.T, h *harness) csinode.ReplicatedOpen { return openReq(1) }, csinode.ErrVolumeNotFound},
		{"another UID", func(t *testing.T, h *harness) csinode.ReplicatedOpen {
			h.createVolume(t, 1, copySpec{0, true, v1alpha1.ReplicaInSync}, copySpec{1, true, v1alpha1.ReplicaInSync})
			r := openReq(1)
			r.VolumeUID = "other"
			return r
		}, csinode.ErrVolumeNotFound},
		{"attached at a newer generation", func(t *testing.T, h *harness) csinode.ReplicatedOpen {
			h.createVolume(t, 3, copySpec{0, true, v1alpha1.ReplicaInSync}, copySpec{1, true, v1alpha1.ReplicaInSync})
			return openReq(2)
		}, csinode.ErrFenced},
		{"attached to another node", func(t *testing.T, h *harness) csinode.ReplicatedOpen {
			h.createVolume(t, 1, copySpec{0, true, v1alpha1.ReplicaInSync}, copySpec{1, true, v1alpha1.ReplicaInSync})
			vol := h.volume(t)
			vol.Status.Attachment.Node = "node-z"
			if err := h.client.Status().Update(context.Background(), vol); err != nil {
				t.Fatal(err)
			}
			return openReq(1)
		}, csinode.ErrFenced},
		{"a copy saw a newer generation", func(t *testing.T, h *harness) csinode.ReplicatedOpen {
			h.createVolume(t, 1, copySpec{0, true, v1alpha1.ReplicaInSync}, copySpec{1, true, v1alpha1.ReplicaInSync})
			if err := h.nodes[1].replicas().Flush(context.Background(), replica.Ref{StoreUUID: h.nodes[1].uuid, Volume: testUID}, 5); err != nil {
				t.Fatal(err)
			}
			return openReq(1)
		}, csinode.ErrFenced},
		{"no copy InSync", func(t *testing.T, h *harness) csinode.ReplicatedOpen {
			h.createVolume(t, 1, copySpec{0, true, v1alpha1.ReplicaLost}, copySpec{1, true, v1alpha1.ReplicaCatchingUp})
			return openReq(1)
		}, csinode.ErrNoInSyncCopy},
		{"no in-sync copy reachable", func(t *testing.T, h *harness) csinode.ReplicatedOpen {
			h.createVolume(t, 1, copySpec{0, true, v1alpha1.ReplicaCatchingUp}, copySpec{1, true, v1alpha1.ReplicaInSync})
			h.dialer.setDown(h.nodes[1].env.Addr, true)
			return openReq(1)
		}, csinode.ErrNoInSyncCopy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, 2)
			req := tt.setup(t, h)
			v := h.volumes(t, never)
			be, _, err := v.Open(context.Background(), req)
			if !errors.Is(err, tt.want) {
				if be != nil {
					_ = be.Close(context.Background())
				}
				t.Fatalf("Open = %v, want %v", err, tt.want)
			}
			if len(v.ReplicationStats()) != 0 {
				t.Fatal("a refused Open left an open volume")
			}
		})
	}
}

// TestOpenDropsUnreachableInSyncCopy: an InSync copy that cannot be reached at Open is recorded
// CatchingUp before Open returns and synced once it can be reached: resynced (its dirty regions
// only) when the in-sync copy's write intent is known, rebuilt when it is not (a copy never
// reconciled keeps no log: an earlier coordinator's write could have landed anywhere on it).
func TestOpenDropsUnreachableInSyncCopy(t *testing.T) {
	for _, tc := range []struct {
		name     string
		servedOK bool // an earlier Open and clean Close started the copies' write-intent logs
		kind     string
	}{
		{"the write intent is known: resynced", true, KindResync},
		{"no write-intent log yet: rebuilt", false, KindRebuild},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, 2)
			h.createVolume(t, 1, copySpec{0, true, v1alpha1.ReplicaInSync}, copySpec{1, true, v1alpha1.ReplicaInSync})
			v := h.volumes(t, never)
			ctx := context.Background()
			gen := uint64(1)
			if tc.servedOK {
				if err := h.open(t, v, gen).Close(ctx); err != nil {
					t.Fatal(err)
				}
				gen++
			}
			h.dialer.setDown(h.nodes[1].env.Addr, true)
			b := h.open(t, v, gen)
			if c := h.copyStatus(t, 1); c.State != v1alpha1.ReplicaCatchingUp || !strings.Contains(c.Message, "node down") {
				t.Fatalf("unreachable copy after Open = %+v, want CatchingUp", c)
			}
			if err := b.WriteAt(ctx, pattern(12, 4096), 2<<20); err != nil {
				t.Fatal(err)
			}
			h.dialer.setDown(h.nodes[1].env.Addr, false)
			b.syncOnce(ctx)
			if c := h.copyStatus(t, 1); c.State != v1alpha1.ReplicaInSync {
				t.Fatalf("copy after it came back = %+v, want InSync", c)
			}
			s := stat(t, v, h.nodes[1].store)
			if tc.kind == KindResync && (s.SyncedBytes[KindResync] != regionSize || s.SyncedBytes[KindRebuild] != 0) ||
				tc.kind == KindRebuild && (s.SyncedBytes[KindRebuild] == 0 || s.SyncedBytes[KindResync] != 0) {
				t.Fatalf("stat = %+v, want a %s (for a resync: of the one region written)", s, tc.kind)
			}
			h.checkCopy(t, 1, gen, 2<<20, pattern(12, 4096))
		})
	}
}

// TestCopyMadeInSyncAfterOpenIsDemoted: a copy the status says InSync but the coordinator does
// not write (it was Pending at Open) is marked CatchingUp and rebuilt.
func TestCopyMadeInSyncAfterOpenIsDemoted(t *testing.T) {
	h := newHarness(t, 2)
	h.createVolume(t, 1, copySpec{0, true, v1alpha1.ReplicaInSync}, copySpec{1, true, v1alpha1.ReplicaPending})
	v := h.volumes(t, never)
	b := h.open(t, v, 1)
	ctx := context.Background()
	if err := b.WriteAt(ctx, pattern(13, 4096), 0); err != nil {
		t.Fatal(err)
	}
	vol := h.volume(t)
	copyOf(&vol.Status, h.nodes[1].store).State = v1alpha1.ReplicaInSync
	if err := h.client.Status().Update(ctx, vol); err != nil {
		t.Fatal(err)
	}
	// One pass demotes it (a copy InSync in status is never synced), the next rebuilds it; the
	// pass that runs right after Open may have taken the first step already.
	b.syncOnce(ctx)
	b.syncOnce(ctx)
	if c := h.copyStatus(t, 1); c.State != v1alpha1.ReplicaInSync {
		t.Fatalf("copy = %+v, want InSync after the rebuild", c)
	}
	if s := stat(t, v, h.nodes[1].store); s.SyncedBytes[KindRebuild] == 0 {
		t.Fatalf("stat = %+v, want a rebuild", s)
	}
	h.checkCopy(t, 1, 1, 0, pattern(13, 4096))
}

// blockingLimiter blocks every sync until its context ends, and says when the first one waits.
type blockingLimiter struct {
	waiting chan struct{}
	once    sync.Once
}

func (l *blockingLimiter) WaitN(ctx context.Context, _ int) error {
	l.once.Do(func() { close(l.waiting) })
	<-ctx.Done()
	return ctx.Err()
}

// TestCloseStopsRunningSync: a rebuild throttled by the Limiter is running when Close is called;
// Close stops it, flushes, and the copy stays CatchingUp.
func TestCloseStopsRunningSync(t *testing.T) {
	h := newHarness(t, 2)
	ctx := context.Background()
	if err := h.nodes[0].replicas().Write(ctx, replica.Ref{StoreUUID: h.nodes[0].uuid, Volume: testUID}, 1, 0, pattern(14, 4096)); err != nil {
		t.Fatal(err)
	}
	h.createVolume(t, 1, copySpec{0, true, v1alpha1.ReplicaInSync}, copySpec{1, true, v1alpha1.ReplicaCatchingUp})
	v := h.volumes(t, never)
	lim := &blockingLimiter{waiting: make(chan struct{})}
	v.opts.Limiter = lim
	be, _, err := v.Open(ctx, openReq(1))
	if err != nil {
		t.Fatal(err)
	}
	<-lim.waiting // the loop's first pass is rebuilding the copy
	if err := be.WriteAt(ctx, pattern(15, 4096), 4096); err != nil {
		t.Fatal(err)
	}
	if err := be.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if c := h.copyStatus(t, 1); c.State != v1alpha1.ReplicaCatchingUp || !strings.HasPrefix(c.Message, "rebuilding from store-a") {
		t.Fatalf("copy after Close = %+v, want CatchingUp with the rebuild's message", c)
	}
}

// TestOpenTwice: a second Open of an open volume is refused; once closed, the volume opens again
// at a newer generation, which fences the old one's requests on every copy.
func TestOpenTwice(t *testing.T) {
	h := newHarness(t, 2)
	h.createVolume(t, 1, copySpec{0, true, v1alpha1.ReplicaInSync}, copySpec{1, true, v1alpha1.ReplicaInSync})
	v := h.volumes(t, never)
	ctx := context.Background()
	first, _, err := v.Open(ctx, openReq(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := v.Open(ctx, openReq(1)); !errors.Is(err, ErrAlreadyOpen) {
		t.Fatalf("second Open = %v, want ErrAlreadyOpen", err)
	}
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	vol := h.volume(t)
	vol.Status.Attachment.Generation = 2
	if err := h.client.Status().Update(ctx, vol); err != nil {
		t.Fatal(err)
	}
	b := h.open(t, v, 2)
	if err := b.WriteAt(ctx, pattern(16, 4096), 0); err != nil {
		t.Fatal(err)
	}
	for i := range h.nodes {
		if _, err := h.nodes[i].replicas().Read(ctx, replica.Ref{StoreUUID: h.nodes[i].uuid, Volume: testUID}, 1, 0, 4096); !errors.Is(err, replica.ErrStaleGeneration) {
			t.Fatalf("a generation-1 read on copy %d after the reopen = %v, want ErrStaleGeneration", i, err)
		}
		h.checkCopy(t, i, 2, 0, pattern(16, 4096))
	}
}

// recreate deletes node i's copy of the test volume and creates it again, empty: what the
// operator's retirement and a later replacement on the same Store do.
func (h *harness) recreate(t *testing.T, i int) {
	t.Helper()
	nd := h.nodes[i]
	cl, err := nodeclient.Dial(nd.env.Addr, h.dialer.tls[nd.env.Addr])
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ref := &nodepb.VolumeRef{StoreUuid: nd.uuid, VolumeId: testUID}
	if _, err := cl.Volumes.DeleteVolume(ctx, &nodepb.DeleteVolumeRequest{Ref: ref}); err != nil {
		t.Fatalf("delete the copy on %s: %v", nd.store, err)
	}
	if _, err := cl.Volumes.CreateVolume(ctx, &nodepb.CreateVolumeRequest{Ref: ref, SizeBytes: testVolSize}); err != nil {
		t.Fatalf("create the copy on %s again: %v", nd.store, err)
	}
}

// setReplicas replaces the test Volume's status.replicas.
func (h *harness) setReplicas(t *testing.T, reps []v1alpha1.VolumeReplica) {
	t.Helper()
	vol := h.volume(t)
	vol.Status.Replicas, vol.Status.InSyncReplicas = reps, countInSync(reps)
	if err := h.client.Status().Update(context.Background(), vol); err != nil {
		t.Fatal(err)
	}
}

// openThreeCopies opens the test volume with three in-sync copies and writes cold at 0; with
// drop, the third copy is then dropped by a write at 4 MiB while its node cannot be reached (it
// is reachable again on return, with a dirty region there).
func openThreeCopies(t *testing.T, cold []byte, drop bool) (*harness, *Volumes, *backend) {
	t.Helper()
	h := newHarness(t, 3)
	h.createVolume(t, 1, inSyncCopies(3)...)
	v := h.volumes(t, never)
	b := h.open(t, v, 1)
	ctx := context.Background()
	if err := b.WriteAt(ctx, cold, 0); err != nil {
		t.Fatal(err)
	}
	if drop {
		addr := h.nodes[2].env.Addr
		h.dialer.setDown(addr, true)
		if err := b.WriteAt(ctx, pattern(42, 4096), 4<<20); err != nil {
			t.Fatal(err)
		}
		h.dialer.setDown(addr, false)
	}
	return h, v, b
}

// rebuildsNewCopy lists the third copy CatchingUp in reps, as a new copy placed on its Store is,
// runs sync passes (at most passes) until it is InSync, and checks that it was rebuilt, never
// resynced, and holds cold at 0 and hot at 6 MiB.
func rebuildsNewCopy(t *testing.T, h *harness, v *Volumes, b *backend, reps []v1alpha1.VolumeReplica, passes int, cold, hot []byte) {
	t.Helper()
	store := h.nodes[2].store
	reps = slices.Clone(reps)
	for i := range reps {
		if reps[i].Store == store {
			reps[i].State, reps[i].Message = v1alpha1.ReplicaCatchingUp, "new copy"
		}
	}
	h.setReplicas(t, reps)
	for pass := 0; pass < passes && h.copyStatus(t, 2).State != v1alpha1.ReplicaInSync; pass++ {
		b.syncOnce(context.Background())
	}
	if c := h.copyStatus(t, 2); c.State != v1alpha1.ReplicaInSync {
		t.Fatalf("new copy after %d sync passes = %+v, want InSync", passes, c)
	}
	if s := stat(t, v, store); s.SyncedBytes[KindRebuild] == 0 || s.SyncedBytes[KindResync] != 0 {
		t.Fatalf("stat of the new copy = %+v, want a rebuild and no resync", s)
	}
	h.checkCopy(t, 2, 1, 0, cold)
	h.checkCopy(t, 2, 1, 6<<20, hot)
}

// TestCopyLeavingStatusIsForgotten: a copy whose entry leaves status.replicas (retired) is
// forgotten by the coordinator, in sync or not, and a new copy later placed on the same Store is
// rebuilt in full, never resynced from the old copy's dirty regions (which would leave it without
// the data written before the old copy was dropped).
func TestCopyLeavingStatusIsForgotten(t *testing.T) {
	for _, tc := range []struct {
		name    string
		dropped bool // the old copy was dropped (CatchingUp) before it left, else it left in sync
	}{{"dropped copy", true}, {"in-sync copy", false}} {
		t.Run(tc.name, func(t *testing.T) {
			cold := pattern(41, 1<<20) // written before the drop: outside every dirty region
			h, v, b := openThreeCopies(t, cold, tc.dropped)
			ctx := context.Background()
			gone := h.nodes[2]
			// Retired: its entry goes, and its node deletes it.
			full := h.volume(t).Status.Replicas
			h.setReplicas(t, slices.DeleteFunc(slices.Clone(full), func(r v1alpha1.VolumeReplica) bool { return r.Store == gone.store }))
			b.syncOnce(ctx)
			if slices.Contains(b.co.InSync(), gone.store) {
				t.Fatalf("coordinator's in-sync set %v still holds the retired copy", b.co.InSync())
			}
			h.recreate(t, 2)
			if err := b.WriteAt(ctx, pattern(43, 4096), 6<<20); err != nil {
				t.Fatal(err)
			}
			// A new copy on the same Store, as a replacement is placed: CatchingUp, empty.
			rebuildsNewCopy(t, h, v, b, full, 1, cold, pattern(43, 4096))
		})
	}
}

// TestCopyReplacedWithinOnePass: a copy retired and a new copy placed on the same Store before the
// coordinator's sync loop saw the entry leave (the window TestCopyLeavingStatusIsForgotten does
// not cover). The coordinator is bound to the old copy's incarnation: its writes are refused by
// the new copy (an in-sync old copy is dropped, not written as if the new one held its data), the
// resync its dirty log would allow is refused, and the next pass rebuilds the new copy in full.
func TestCopyReplacedWithinOnePass(t *testing.T) {
	for _, tc := range []struct {
		name    string
		dropped bool // the old copy was dropped (CatchingUp) before it was replaced, else it was in sync
	}{{"dropped copy", true}, {"in-sync copy", false}} {
		t.Run(tc.name, func(t *testing.T) {
			cold := pattern(51, 1<<20) // written before the replacement: outside every dirty region
			h, v, b := openThreeCopies(t, cold, tc.dropped)
			ctx := context.Background()
			gone := h.nodes[2]
			h.recreate(t, 2) // retired, deleted, and a new copy created there: no sync pass between
			if err := b.WriteAt(ctx, pattern(53, 4096), 6<<20); err != nil {
				t.Fatal(err)
			}
			if slices.Contains(b.co.InSync(), gone.store) {
				t.Fatalf("coordinator's in-sync set %v holds the new copy it never synced", b.co.InSync())
			}
			h.checkCopy(t, 2, 1, 6<<20, make([]byte, 4096)) // the write meant for the old copy did not land
			rebuildsNewCopy(t, h, v, b, h.volume(t).Status.Replicas, 2, cold, pattern(53, 4096))
		})
	}
}

// TestServingNodesCopyRetired: the copy on the serving node keeps the coordinator's dirty log.
// Once it is retired (its Store drained: the copy moved elsewhere) and deleted, a write that must
// mark a region dirty for another copy that fails meanwhile still succeeds (the log lives in
// memory from then on, instead of failing every such write on a store that is gone), and the
// failed copy is resynced from it when it returns.
func TestServingNodesCopyRetired(t *testing.T) {
	cold := pattern(71, 1<<20)
	h, v, b := openThreeCopies(t, cold, false)
	ctx := context.Background()
	local, down := h.nodes[0], h.nodes[2]
	h.setReplicas(t, slices.DeleteFunc(slices.Clone(h.volume(t).Status.Replicas), func(r v1alpha1.VolumeReplica) bool { return r.Store == local.store }))
	b.syncOnce(ctx)
	cl, err := nodeclient.Dial(local.env.Addr, h.dialer.tls[local.env.Addr])
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	dctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := cl.Volumes.DeleteVolume(dctx, &nodepb.DeleteVolumeRequest{Ref: &nodepb.VolumeRef{StoreUuid: local.uuid, VolumeId: testUID}}); err != nil {
		t.Fatalf("delete the retired copy on %s: %v", local.store, err)
	}

	h.dialer.setDown(down.env.Addr, true)
	hot := pattern(72, 4096)
	if err := b.WriteAt(ctx, hot, 2<<20); err != nil {
		t.Fatalf("write while %s is down, after the serving node's copy was retired: %v", down.store, err)
	}
	if c := h.copyStatus(t, 2); c.State != v1alpha1.ReplicaCatchingUp {
		t.Fatalf("copy on %s after the failed write = %+v, want CatchingUp", down.store, c)
	}
	h.dialer.setDown(down.env.Addr, false)
	b.syncOnce(ctx)
	if c := h.copyStatus(t, 2); c.State != v1alpha1.ReplicaInSync {
		t.Fatalf("copy on %s after a sync pass = %+v, want InSync", down.store, c)
	}
	if s := stat(t, v, down.store); s.SyncedBytes[KindResync] != regionSize {
		t.Fatalf("stat of %s = %+v, want a resync of one region", down.store, s)
	}
	for _, i := range []int{1, 2} {
		h.checkCopy(t, i, 1, 0, cold)
		h.checkCopy(t, i, 1, 2<<20, hot)
	}
}

// TestServingNodesStoreFails: the device under the serving node's own copy (the one that keeps
// the dirty log) fails: writes go on on the other two copies, the failed copy is dropped
// (CatchingUp) and its later writes are marked in memory; once the device works again a sync pass
// resyncs it from those marks, and every copy holds the data.
func TestServingNodesStoreFails(t *testing.T) {
	cold := pattern(81, 1<<20)
	h, v, b := openThreeCopies(t, cold, false)
	ctx := context.Background()
	local := h.nodes[0]
	local.rot.fail(syscall.EIO)
	hot := pattern(82, 4096)
	for i := range 4 {
		if err := b.WriteAt(ctx, hot, int64(2<<20+i*int(regionSize))); err != nil {
			t.Fatalf("write %d with the serving node's store failing: %v", i, err)
		}
	}
	if c := h.copyStatus(t, 0); c.State != v1alpha1.ReplicaCatchingUp {
		t.Fatalf("copy on %s after its store failed a write = %+v, want CatchingUp", local.store, c)
	}
	got := make([]byte, len(hot))
	if err := b.ReadAt(ctx, got, 2<<20); err != nil || !bytes.Equal(got, hot) {
		t.Fatalf("read back from the other copies: %v (equal %v)", err, bytes.Equal(got, hot))
	}
	local.rot.fail(nil)
	b.syncOnce(ctx)
	if c := h.copyStatus(t, 0); c.State != v1alpha1.ReplicaInSync {
		t.Fatalf("copy on %s after a sync pass with its store back = %+v, want InSync", local.store, c)
	}
	if s := stat(t, v, local.store); s.SyncedBytes[KindResync] != 4*regionSize {
		t.Fatalf("stat of %s = %+v, want a resync of the 4 regions written meanwhile", local.store, s)
	}
	for i := range 3 {
		h.checkCopy(t, i, 1, 0, cold)
		for j := range 4 {
			h.checkCopy(t, i, 1, int64(2<<20+j*int(regionSize)), hot)
		}
	}
}
