package csinode

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"testing/synctest"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/go-logr/logr/testr"
	"google.golang.org/grpc/codes"

	"github.com/cobaltstore/cobalt/csi/driver"
	"github.com/cobaltstore/cobalt/node-daemon/frontend"
)

const (
	replUID   = "rep-uid-1"
	replUID2  = "rep-uid-2"
	replSize  = 128 << 20
	replSize2 = 64 << 20
)

// newReplicatedServer returns a Server whose replicated volumes come from repl, on a fresh fake
// frontend, with its records in stateDir.
func newReplicatedServer(t *testing.T, repl ReplicatedVolumes, stateDir string) (*Server, *fakeFrontend) {
	t.Helper()
	fe := &fakeFrontend{devices: map[string]frontend.Device{}}
	s, err := New(Options{
		NodeName:   "node-a",
		Volumes:    &fakeVolumes{stores: map[string]map[string]int64{testStore: {testUID: 64 << 20}}},
		Replicated: repl,
		Frontend:   fe,
		StateDir:   stateDir,
		Log:        testr.New(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, fe
}

func replicatedContext(uid string) map[string]string {
	return map[string]string{driver.ContextVolumeUID: uid, driver.ContextVolume: "ns/" + uid, driver.ContextReplicas: "3"}
}

func generation(gen uint64) map[string]string {
	return map[string]string{driver.PublishContextGeneration: strconv.FormatUint(gen, 10)}
}

// replicatedStage is a block stage of a replicated volume at gen.
func replicatedStage(id, uid, staging string, gen uint64) *csi.NodeStageVolumeRequest {
	return &csi.NodeStageVolumeRequest{VolumeId: id, StagingTargetPath: staging, VolumeCapability: blockCap(writer),
		VolumeContext: replicatedContext(uid), PublishContext: generation(gen)}
}

func TestReplicatedStageErrors(t *testing.T) {
	staging := filepath.Join(t.TempDir(), "staging")
	withContext := func(change func(vctx, pctx map[string]string)) *csi.NodeStageVolumeRequest {
		req := replicatedStage("v", replUID, staging, 3)
		change(req.VolumeContext, req.PublishContext)
		return req
	}
	for _, tc := range []struct {
		name      string
		req       *csi.NodeStageVolumeRequest
		setup     func(*fakeReplicated)
		noPath    bool // the server has no Options.Replicated
		code      codes.Code
		fragments []string
	}{
		{name: "no generation", req: withContext(func(_, p map[string]string) { delete(p, driver.PublishContextGeneration) }),
			code: codes.InvalidArgument, fragments: []string{driver.PublishContextGeneration, "ControllerPublishVolume", "attachRequired"}},
		{name: "generation not a number", req: withContext(func(_, p map[string]string) { p[driver.PublishContextGeneration] = "three" }),
			code: codes.InvalidArgument, fragments: []string{`"three"`, "attachment generation"}},
		{name: "generation zero", req: withContext(func(_, p map[string]string) { p[driver.PublishContextGeneration] = "0" }),
			code: codes.InvalidArgument, fragments: []string{`"0"`}},
		{name: "replicas not a number", req: withContext(func(v, _ map[string]string) { v[driver.ContextReplicas] = "two" }),
			code: codes.InvalidArgument, fragments: []string{driver.ContextReplicas, `"two"`}},
		{name: "no Volume object", req: withContext(func(v, _ map[string]string) { delete(v, driver.ContextVolume) }),
			code: codes.InvalidArgument, fragments: []string{driver.ContextVolume}},
		{name: "not found", req: replicatedStage("v", "gone-uid", staging, 3),
			code: codes.NotFound, fragments: []string{"replicated volume v", "gone-uid", "no copies left"}},
		{name: "fenced", req: replicatedStage("v", replUID, staging, 3), setup: func(f *fakeReplicated) { f.claim(replUID, 4) },
			code: codes.FailedPrecondition, fragments: []string{"attached to another node at a newer generation than 3", "node-a"}},
		{name: "no in-sync copy", req: replicatedStage("v", replUID, staging, 3),
			setup: func(f *fakeReplicated) { f.set(replUID, func(v *fakeReplicatedVolume) { v.noInSync = true }) },
			code:  codes.Unavailable, fragments: []string{"no in-sync copy of volume v", "node-a"}},
		{name: "no replicated data path", req: replicatedStage("v", replUID, staging, 3), noPath: true,
			code: codes.FailedPrecondition, fragments: []string{"volume v is replicated (3 copies)", "node-a does not serve replicated volumes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repl := newFakeReplicated(map[string]int64{replUID: replSize})
			if tc.setup != nil {
				tc.setup(repl)
			}
			var rv ReplicatedVolumes = repl
			if tc.noPath {
				rv = nil
			}
			s, fe := newReplicatedServer(t, rv, t.TempDir())
			_, err := s.NodeStageVolume(t.Context(), tc.req)
			wantCode(t, tc.name, err, tc.code, tc.fragments...)
			// A failed stage leaves nothing behind: no record, no device, no open backend.
			if r, err := s.records.load("v"); r != nil || err != nil {
				t.Errorf("record after a failed stage = %+v, %v", r, err)
			}
			if len(fe.devices) != 0 || s.open.get("v") != nil || len(repl.opened) != 0 {
				t.Errorf("after a failed stage: devices %v, open backend %v, opened %v", fe.devices, s.open.get("v"), repl.opened)
			}
		})
	}
}

func TestReplicatedStageUnstage(t *testing.T) {
	repl := newFakeReplicated(map[string]int64{replUID: replSize})
	s, fe := newReplicatedServer(t, repl, t.TempDir())
	ctx := t.Context()
	staging := filepath.Join(t.TempDir(), "staging")

	for i := range 2 {
		if _, err := s.NodeStageVolume(ctx, replicatedStage("v", replUID, staging, 1)); err != nil {
			t.Fatalf("stage #%d at generation 1: %v", i+1, err)
		}
	}
	if len(repl.opened) != 1 || repl.opened[0] != (ReplicatedOpen{Volume: "ns/" + replUID, VolumeUID: replUID, Generation: 1}) {
		t.Fatalf("opened = %+v, want one open at generation 1", repl.opened)
	}
	if d, ok := fe.Device(replUID); !ok || d.Size != replSize {
		t.Fatalf("device = %+v, %v; want %d bytes", d, ok, int64(replSize))
	}
	r, err := s.records.load("v")
	if err != nil || r.Version != recordV2 || r.Replicas != 3 || r.Generation != 1 || r.StoreUUID != "" {
		t.Fatalf("record = %+v, %v; want version 2, 3 replicas, generation 1", r, err)
	}
	// I/O through the device reaches the open backend.
	if err := fe.backend(replUID).WriteAt(ctx, make([]byte, 4096), 0); err != nil {
		t.Fatalf("write through the device: %v", err)
	}
	h, err := s.NodeGetVolumeHealth(ctx, &csi.NodeGetVolumeHealthRequest{VolumeId: "v"})
	if err != nil || len(h.GetVolumeHealth().GetHealthStatuses()) != 0 {
		t.Errorf("health of a served replicated volume = %v, %v", h, err)
	}

	single := &csi.NodeStageVolumeRequest{VolumeId: "v", StagingTargetPath: staging, VolumeCapability: blockCap(writer), VolumeContext: volumeContext(testStore, replUID)}
	_, err = s.NodeStageVolume(ctx, single)
	wantCode(t, "stage as single-copy", err, codes.AlreadyExists, "as a replicated (3 copies) volume", "as a single-copy volume")

	// Staged again at a newer generation (re-attached): reopened, the old backend closed once
	// the device is served by the new one.
	oldBackend := fe.backend(replUID)
	if _, err := s.NodeStageVolume(ctx, replicatedStage("v", replUID, staging, 2)); err != nil {
		t.Fatalf("stage at generation 2: %v", err)
	}
	gens, closed := repl.backendsOf(replUID)
	if !slices.Equal(gens, []uint64{1, 2}) || !slices.Equal(closed, []bool{true, false}) {
		t.Fatalf("backends of generations %v, closed %v; want 1 closed and 2 open", gens, closed)
	}
	if b, ok := fe.backend(replUID).(*servedReplica); !ok || frontend.Backend(b) == oldBackend || b.gen != 2 {
		t.Fatalf("the device is not served by the generation 2 backend: %+v", b)
	}
	if err := oldBackend.WriteAt(ctx, make([]byte, 4096), 0); !errors.Is(err, errReplicaClosed) {
		t.Errorf("I/O on the replaced backend: %v, want errReplicaClosed", err)
	}
	if r, _ := s.records.load("v"); r.Generation != 2 {
		t.Errorf("record generation after the restage = %d, want 2", r.Generation)
	}
	_, err = s.NodeStageVolume(ctx, replicatedStage("v", replUID, staging, 1))
	wantCode(t, "stage at an older generation", err, codes.FailedPrecondition, "generation 2", "older generation 1", "stale")
	if _, err := s.NodeStageVolume(ctx, replicatedStage("v", replUID, staging, 2)); err != nil || len(repl.opened) != 2 {
		t.Fatalf("stage again at generation 2: %v, %d opens (want 2)", err, len(repl.opened))
	}

	for i := range 2 {
		if _, err := s.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: "v", StagingTargetPath: staging}); err != nil {
			t.Fatalf("unstage #%d: %v", i+1, err)
		}
	}
	if _, closed := repl.backendsOf(replUID); !slices.Equal(closed, []bool{true, true}) {
		t.Errorf("backends closed after unstage: %v", closed)
	}
	if _, ok := fe.Device(replUID); ok || s.open.get("v") != nil {
		t.Error("device or backend left after unstage")
	}
	if r, _ := s.records.load("v"); r != nil {
		t.Errorf("record after unstage: %+v", r)
	}
	if m := repl.misuse(); len(m) != 0 {
		t.Errorf("backends misused: %v", m)
	}
}

func TestReplicatedExpandAndHealth(t *testing.T) {
	repl := newFakeReplicated(map[string]int64{replUID: replSize})
	s, fe := newReplicatedServer(t, repl, t.TempDir())
	ctx := t.Context()
	dir := t.TempDir()
	staging := filepath.Join(dir, "staging")
	if _, err := s.NodeStageVolume(ctx, replicatedStage("v", replUID, staging, 5)); err != nil {
		t.Fatal(err)
	}
	expand := func(required int64) (*csi.NodeExpandVolumeResponse, error) {
		return s.NodeExpandVolume(ctx, &csi.NodeExpandVolumeRequest{VolumeId: "v", VolumePath: dir, CapacityRange: &csi.CapacityRange{RequiredBytes: required}})
	}
	// The controller grew every copy; the node grows the device to the smallest.
	repl.set(replUID, func(v *fakeReplicatedVolume) { v.size = 2 * replSize })
	resp, err := expand(2 * replSize)
	if err != nil || resp.CapacityBytes != 2*replSize {
		t.Fatalf("expand = %v, %v; want %d bytes", resp, err, 2*replSize)
	}
	if d, _ := fe.Device(replUID); d.Size != 2*replSize {
		t.Errorf("device size after expand = %d", d.Size)
	}
	_, err = expand(4 * replSize)
	wantCode(t, "expand past the copies", err, codes.Unavailable, "on its smallest copy", "not grown it yet")

	health := func() []*csi.VolumeHealth_VolumeHealthEntry {
		t.Helper()
		h, err := s.NodeGetVolumeHealth(ctx, &csi.NodeGetVolumeHealthRequest{VolumeId: "v"})
		if err != nil {
			t.Fatal(err)
		}
		return h.GetVolumeHealth().GetHealthStatuses()
	}
	b := fe.backend(replUID)
	for _, tc := range []struct {
		name   string
		change func(*fakeReplicatedVolume)
		reason string // "" for healthy
		code   codes.Code
	}{
		{"no in-sync copy", func(v *fakeReplicatedVolume) { v.noInSync = true }, ReasonNoInSyncCopy, codes.Unavailable},
		{"copy back", func(v *fakeReplicatedVolume) { v.noInSync = false }, "", codes.OK},
		{"fenced", func(v *fakeReplicatedVolume) { v.newest = 6 }, ReasonFenced, codes.FailedPrecondition},
		{"fenced stays", func(v *fakeReplicatedVolume) { v.noInSync = true }, ReasonFenced, codes.FailedPrecondition},
	} {
		repl.set(replUID, tc.change)
		_ = b.WriteAt(ctx, make([]byte, 4096), 0) // health reports what the I/O found
		st := health()
		switch {
		case tc.reason == "" && len(st) != 0:
			t.Errorf("%s: health = %v, want healthy", tc.name, st)
		case tc.reason != "" && (len(st) != 1 || st[0].Reason != tc.reason || st[0].Status != csi.VolumeHealthErrorType_INACCESSIBLE):
			t.Errorf("%s: health = %v, want INACCESSIBLE %s", tc.name, st, tc.reason)
		}
		if tc.code != codes.OK {
			_, err := expand(0)
			wantCode(t, tc.name+": expand", err, tc.code)
		}
	}
	if _, err := s.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: "v", StagingTargetPath: staging}); err != nil {
		t.Fatal(err)
	}
}

// TestReplicatedRecover restarts the node daemon (a new Server and frontend on the same state
// directory) with two replicated volumes and a single-copy one staged; one replicated volume
// was attached to another node meanwhile. Recover reopens the other at its recorded generation,
// serves the single-copy one, and reports the fenced one.
func TestReplicatedRecover(t *testing.T) {
	repl := newFakeReplicated(map[string]int64{replUID: replSize, replUID2: replSize2})
	stateDir := t.TempDir()
	s, _ := newReplicatedServer(t, repl, stateDir)
	ctx := t.Context()
	dir := t.TempDir()
	for _, req := range []*csi.NodeStageVolumeRequest{
		replicatedStage("a", replUID, filepath.Join(dir, "a"), 1),
		replicatedStage("b", replUID2, filepath.Join(dir, "b"), 1),
		{VolumeId: "c", StagingTargetPath: filepath.Join(dir, "c"), VolumeCapability: blockCap(writer), VolumeContext: volumeContext(testStore, testUID)},
	} {
		if _, err := s.NodeStageVolume(ctx, req); err != nil {
			t.Fatalf("stage %s: %v", req.VolumeId, err)
		}
	}
	if _, err := s.NodeStageVolume(ctx, replicatedStage("a", replUID, filepath.Join(dir, "a"), 4)); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.records.load("c"); r.Version != recordV1 {
		t.Errorf("single-copy record version = %d, want 1 (readable by older daemons)", r.Version)
	}

	// The daemon dies (its backends with it); b is attached to another node at generation 2.
	repl.claim(replUID2, 2)
	s2, fe2 := newReplicatedServer(t, repl, stateDir)
	failed := s2.Recover(ctx)
	if len(failed) != 1 || failed[0].VolumeID != "b" || failed[0].Volume != "ns/"+replUID2 {
		t.Fatalf("Recover failures = %+v, want b only", failed)
	}
	wantCode(t, "recover of a fenced volume", errors.Unwrap(failed[0].Err), codes.FailedPrecondition, "attached to another node at a newer generation than 1")
	if last := repl.opened[len(repl.opened)-1]; last != (ReplicatedOpen{Volume: "ns/" + replUID, VolumeUID: replUID, Generation: 4}) {
		t.Errorf("Recover opened %+v, want a at its recorded generation 4", last)
	}
	for _, uid := range []string{replUID, testUID} {
		if _, ok := fe2.Device(uid); !ok {
			t.Errorf("volume %s not exposed after Recover", uid)
		}
	}
	if _, ok := fe2.Device(replUID2); ok || s2.open.get("b") != nil {
		t.Error("the fenced volume is served after Recover")
	}
	// A second Recover changes nothing for what is served, and opens nothing again.
	opens := len(repl.opened)
	if failed := s2.Recover(ctx); len(failed) != 1 || len(repl.opened) != opens {
		t.Errorf("second Recover: failures %+v, %d new opens", failed, len(repl.opened)-opens)
	}
	// The fenced volume unstages (its Pod moved).
	if _, err := s2.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: "b", StagingTargetPath: filepath.Join(dir, "b")}); err != nil {
		t.Errorf("unstage of the fenced volume: %v", err)
	}
	if err := s2.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestRecordVersions(t *testing.T) {
	rs := records{dir: t.TempDir()}
	v1 := map[string]any{"version": 1, "volumeID": "old", "storeUUID": testStore, "volumeUID": testUID, "stagingPath": "/s", "accessType": accessBlock, "accessMode": writer.String()}
	for name, rec := range map[string]map[string]any{
		"old.json":    v1,
		"future.json": {"version": 3, "volumeID": "future"},
	} {
		data, _ := json.Marshal(rec)
		if err := os.WriteFile(filepath.Join(rs.dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r, err := rs.load("old")
	if err != nil || r == nil || r.replicated() || r.Generation != 0 || r.StoreUUID != testStore {
		t.Fatalf("version 1 record = %+v, %v", r, err)
	}
	if _, err := rs.load("future"); err == nil {
		t.Error("a record of version 3 was read")
	}
	for _, tc := range []struct {
		r    *record
		want int
	}{
		{&record{VolumeID: "single"}, recordV1},
		{&record{VolumeID: "repl", Replicas: 2, Generation: 7}, recordV2},
	} {
		if err := rs.save(tc.r); err != nil {
			t.Fatal(err)
		}
		got, err := rs.load(tc.r.VolumeID)
		if err != nil || got.Version != tc.want || got.Replicas != tc.r.Replicas || got.Generation != tc.r.Generation {
			t.Errorf("%s saved and loaded = %+v, %v; want version %d", tc.r.VolumeID, got, err, tc.want)
		}
	}
}

// TestServerClose: Close closes every open backend once its I/O in flight has finished, and
// the server opens no more.
func TestServerClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		repl := newFakeReplicated(map[string]int64{replUID: replSize, replUID2: replSize2})
		s, fe := newReplicatedServer(t, repl, t.TempDir())
		ctx := t.Context()
		dir := t.TempDir()
		for i, uid := range []string{replUID, replUID2} {
			id := "v" + strconv.Itoa(i)
			if _, err := s.NodeStageVolume(ctx, replicatedStage(id, uid, filepath.Join(dir, id), 1)); err != nil {
				t.Fatal(err)
			}
		}
		// A write in flight on the first volume holds Close until it finishes.
		release := make(chan struct{})
		repl.set(replUID, func(v *fakeReplicatedVolume) { v.backends[0].block = release })
		wrote := make(chan error, 1)
		go func() { wrote <- fe.backend(replUID).WriteAt(context.Background(), make([]byte, 4096), 0) }()
		synctest.Wait()
		closed := make(chan error, 1)
		go func() { closed <- s.Close(context.Background()) }()
		synctest.Wait()
		select {
		case err := <-closed:
			t.Fatalf("Close returned with a write in flight: %v", err)
		default:
		}
		close(release)
		if err := <-wrote; err != nil {
			t.Errorf("the write in flight: %v", err)
		}
		if err := <-closed; err != nil {
			t.Fatalf("Close: %v", err)
		}
		for _, uid := range []string{replUID, replUID2} {
			if _, closed := repl.backendsOf(uid); !slices.Equal(closed, []bool{true}) {
				t.Errorf("backend of %s closed: %v", uid, closed)
			}
		}
		if err := fe.backend(replUID2).Flush(ctx); !errors.Is(err, errReplicaClosed) {
			t.Errorf("flush after Close: %v, want errReplicaClosed", err)
		}
		_, err := s.NodeStageVolume(ctx, replicatedStage("v2", replUID, filepath.Join(dir, "v2"), 2))
		wantCode(t, "stage after Close", err, codes.Unavailable, "shutting down")
		if m := repl.misuse(); len(m) != 0 {
			t.Errorf("backends misused: %v", m)
		}
	})
}
