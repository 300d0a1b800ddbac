package csinode

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/go-logr/logr/testr"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cobaltstore/cobalt/csi/driver"
	"github.com/cobaltstore/cobalt/node-daemon/frontend"
)

const (
	testStore = "11111111-2222-3333-4444-555555555555"
	testUID   = "0a0b0c0d-uid"
)

func newTestServer(t *testing.T) (*Server, *fakeFrontend) {
	t.Helper()
	fe := &fakeFrontend{devices: map[string]frontend.Device{}}
	s, err := New(Options{
		NodeName: "node-a",
		Volumes:  &fakeVolumes{stores: map[string]map[string]int64{testStore: {testUID: 64 << 20}}},
		Frontend: fe,
		StateDir: t.TempDir(),
		Log:      testr.New(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, fe
}

func mountCap(fs string, mode csi.VolumeCapability_AccessMode_Mode) *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: fs}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode},
	}
}

func blockCap(mode csi.VolumeCapability_AccessMode_Mode) *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode},
	}
}

func volumeContext(store, uid string) map[string]string {
	return map[string]string{driver.ContextStoreUUID: store, driver.ContextVolumeUID: uid, driver.ContextVolume: "ns/vol"}
}

// wantCode fails unless err has code and its message contains every fragment.
func wantCode(t *testing.T, name string, err error, code codes.Code, fragments ...string) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("%s: got %v, want code %s", name, err, code)
	}
	for _, f := range fragments {
		if !strings.Contains(status.Convert(err).Message(), f) {
			t.Errorf("%s: message %q does not mention %q", name, status.Convert(err).Message(), f)
		}
	}
}

const writer = csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER

func TestStageValidation(t *testing.T) {
	s, fe := newTestServer(t)
	staging := filepath.Join(t.TempDir(), "staging")
	for _, tc := range []struct {
		name      string
		req       *csi.NodeStageVolumeRequest
		code      codes.Code
		fragments []string
	}{
		{"no volume id", &csi.NodeStageVolumeRequest{StagingTargetPath: staging, VolumeCapability: mountCap("", writer)}, codes.InvalidArgument, []string{"volume_id"}},
		{"no staging path", &csi.NodeStageVolumeRequest{VolumeId: "v", VolumeCapability: mountCap("", writer)}, codes.InvalidArgument, []string{"staging_target_path"}},
		{"no capability", &csi.NodeStageVolumeRequest{VolumeId: "v", StagingTargetPath: staging}, codes.InvalidArgument, []string{"volume_capability"}},
		{"no access mode", &csi.NodeStageVolumeRequest{VolumeId: "v", StagingTargetPath: staging,
			VolumeCapability: &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}}}, codes.InvalidArgument, []string{"access_mode"}},
		{"multi-node writer", &csi.NodeStageVolumeRequest{VolumeId: "v", StagingTargetPath: staging,
			VolumeCapability: mountCap("", csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER)}, codes.InvalidArgument, []string{"MULTI_NODE_MULTI_WRITER", "one node"}},
		{"multi-node reader", &csi.NodeStageVolumeRequest{VolumeId: "v", StagingTargetPath: staging,
			VolumeCapability: blockCap(csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY)}, codes.InvalidArgument, []string{"MULTI_NODE_READER_ONLY"}},
		{"btrfs", &csi.NodeStageVolumeRequest{VolumeId: "v", StagingTargetPath: staging, VolumeCapability: mountCap("btrfs", writer),
			VolumeContext: volumeContext(testStore, testUID)}, codes.InvalidArgument, []string{`"btrfs"`, "ext4", "xfs"}},
		{"no access type", &csi.NodeStageVolumeRequest{VolumeId: "v", StagingTargetPath: staging,
			VolumeCapability: &csi.VolumeCapability{AccessMode: &csi.VolumeCapability_AccessMode{Mode: writer}}}, codes.InvalidArgument, []string{"neither mount nor block"}},
		{"no store in context", &csi.NodeStageVolumeRequest{VolumeId: "v", StagingTargetPath: staging, VolumeCapability: mountCap("", writer),
			VolumeContext: map[string]string{driver.ContextVolumeUID: testUID}}, codes.InvalidArgument, []string{driver.ContextStoreUUID}},
		{"store not served", &csi.NodeStageVolumeRequest{VolumeId: "v", StagingTargetPath: staging, VolumeCapability: blockCap(writer),
			VolumeContext: volumeContext("other-store", testUID)}, codes.FailedPrecondition, []string{"store other-store of volume v is not served by node node-a", "device still present"}},
		{"unknown volume", &csi.NodeStageVolumeRequest{VolumeId: "v", StagingTargetPath: staging, VolumeCapability: blockCap(writer),
			VolumeContext: volumeContext(testStore, "missing-uid")}, codes.NotFound, []string{"volume v (uid missing-uid) does not exist"}},
	} {
		_, err := s.NodeStageVolume(t.Context(), tc.req)
		wantCode(t, tc.name, err, tc.code, tc.fragments...)
	}
	// Failed stages leave nothing behind: no record, no device.
	if r, err := s.records.load("v"); r != nil || err != nil {
		t.Errorf("record after failed stages = %+v, %v", r, err)
	}
	if len(fe.devices) != 0 {
		t.Errorf("devices after failed stages: %v", fe.devices)
	}
}

func TestOtherCallsValidation(t *testing.T) {
	s, _ := newTestServer(t)
	ctx := t.Context()
	dir := t.TempDir()
	check := func(name string, err error, code codes.Code, fragments ...string) {
		t.Helper()
		wantCode(t, name, err, code, fragments...)
	}
	_, err := s.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{StagingTargetPath: dir})
	check("unstage without id", err, codes.InvalidArgument, "volume_id")
	_, err = s.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: "v"})
	check("unstage without path", err, codes.InvalidArgument, "staging_target_path")
	_, err = s.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{StagingTargetPath: dir, TargetPath: dir, VolumeCapability: mountCap("", writer)})
	check("publish without id", err, codes.InvalidArgument, "volume_id")
	_, err = s.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: "v", StagingTargetPath: dir, VolumeCapability: mountCap("", writer)})
	check("publish without target", err, codes.InvalidArgument, "target_path")
	_, err = s.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: "v", TargetPath: dir, VolumeCapability: mountCap("", writer)})
	check("publish without staging path", err, codes.InvalidArgument, "staging_target_path")
	_, err = s.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: "v", StagingTargetPath: dir, TargetPath: dir})
	check("publish without capability", err, codes.InvalidArgument, "volume_capability")
	_, err = s.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: "v", StagingTargetPath: dir, TargetPath: dir, VolumeCapability: mountCap("", writer)})
	check("publish of an unstaged volume", err, codes.FailedPrecondition, "not staged on node node-a")
	_, err = s.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{TargetPath: dir})
	check("unpublish without id", err, codes.InvalidArgument, "volume_id")
	_, err = s.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: "v"})
	check("unpublish without target", err, codes.InvalidArgument, "target_path")
	_, err = s.NodeExpandVolume(ctx, &csi.NodeExpandVolumeRequest{VolumePath: dir})
	check("expand without id", err, codes.InvalidArgument, "volume_id")
	_, err = s.NodeExpandVolume(ctx, &csi.NodeExpandVolumeRequest{VolumeId: "v"})
	check("expand without path", err, codes.InvalidArgument, "volume_path")
	_, err = s.NodeExpandVolume(ctx, &csi.NodeExpandVolumeRequest{VolumeId: "unknown", VolumePath: "some/path"})
	check("expand of an unknown volume", err, codes.NotFound, "unknown")
	_, err = s.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumePath: dir})
	check("stats without id", err, codes.InvalidArgument, "volume_id")
	_, err = s.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: "v"})
	check("stats without path", err, codes.InvalidArgument, "volume_path")
	_, err = s.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: "unknown", VolumePath: dir})
	check("stats of an unknown volume", err, codes.NotFound, "unknown")
	_, err = s.NodeGetVolumeHealth(ctx, &csi.NodeGetVolumeHealthRequest{})
	check("health without id", err, codes.InvalidArgument, "volume_id")
	_, err = s.NodeGetVolumeHealth(ctx, &csi.NodeGetVolumeHealthRequest{VolumeId: "unknown"})
	check("health of an unknown volume", err, codes.NotFound, "unknown")

	// Unstaging and unpublishing what is not there succeeds.
	if _, err := s.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: "v", StagingTargetPath: dir}); err != nil {
		t.Errorf("unstage of an unstaged volume: %v", err)
	}
	if _, err := s.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: "v", TargetPath: filepath.Join(dir, "gone")}); err != nil {
		t.Errorf("unpublish of a missing target: %v", err)
	}
}

// TestBlockStageRules stages a block volume (nothing to mount) and checks the rules that follow
// from the record: idempotency, another path, another capability, publishing it as a file system,
// stats and health by path, and unstage.
func TestBlockStageRules(t *testing.T) {
	s, fe := newTestServer(t)
	ctx := t.Context()
	staging := filepath.Join(t.TempDir(), "staging")
	if err := os.MkdirAll(staging, 0o750); err != nil {
		t.Fatal(err)
	}
	stage := &csi.NodeStageVolumeRequest{VolumeId: "v", StagingTargetPath: staging, VolumeCapability: blockCap(writer), VolumeContext: volumeContext(testStore, testUID)}
	for i := range 2 {
		if _, err := s.NodeStageVolume(ctx, stage); err != nil {
			t.Fatalf("stage #%d: %v", i+1, err)
		}
	}
	if d, ok := fe.Device(testUID); !ok || d.Size != 64<<20 {
		t.Fatalf("device after stage = %+v, %v", d, ok)
	}
	other := &csi.NodeStageVolumeRequest{VolumeId: "v", StagingTargetPath: staging + "2", VolumeCapability: blockCap(writer), VolumeContext: volumeContext(testStore, testUID)}
	_, err := s.NodeStageVolume(ctx, other)
	wantCode(t, "stage at another path", err, codes.FailedPrecondition, "already staged at "+staging)
	incompatible := &csi.NodeStageVolumeRequest{VolumeId: "v", StagingTargetPath: staging, VolumeCapability: mountCap("xfs", writer), VolumeContext: volumeContext(testStore, testUID)}
	_, err = s.NodeStageVolume(ctx, incompatible)
	wantCode(t, "stage with another capability", err, codes.AlreadyExists, "another capability")

	target := filepath.Join(t.TempDir(), "target")
	_, err = s.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: "v", StagingTargetPath: staging, TargetPath: target, VolumeCapability: mountCap("", writer)})
	wantCode(t, "block volume published as a file system", err, codes.InvalidArgument, "staged for block access", "mount access")
	_, err = s.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: "v", StagingTargetPath: staging + "2", TargetPath: target, VolumeCapability: blockCap(writer)})
	wantCode(t, "publish from another staging path", err, codes.FailedPrecondition, "is staged at "+staging)

	_, err = s.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: "v", VolumePath: "some/path"})
	wantCode(t, "stats of a missing path", err, codes.NotFound, "some/path")
	_, err = s.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: "v", VolumePath: t.TempDir()})
	wantCode(t, "stats of a path that is not the volume's", err, codes.NotFound, "neither staged nor published")

	h, err := s.NodeGetVolumeHealth(ctx, &csi.NodeGetVolumeHealthRequest{VolumeId: "v"})
	if err != nil || h.GetVolumeHealth().GetVolumeId() != "v" || len(h.GetVolumeHealth().GetHealthStatuses()) != 0 {
		t.Errorf("health of a served block volume = %v, %v; want no adverse status", h, err)
	}
	s.volumes.(*fakeVolumes).sick = map[string]error{testStore: ErrStoreCorrupt}
	h, err = s.NodeGetVolumeHealth(ctx, &csi.NodeGetVolumeHealthRequest{VolumeId: "v"})
	if st := h.GetVolumeHealth().GetHealthStatuses(); err != nil || len(st) != 1 || st[0].Status != csi.VolumeHealthErrorType_DATA_LOSS || st[0].Reason != ReasonStoreCorrupt {
		t.Errorf("health of a volume on a corrupt store = %v, %v", h, err)
	}

	for i := range 2 {
		if _, err := s.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: "v", StagingTargetPath: staging}); err != nil {
			t.Fatalf("unstage #%d: %v", i+1, err)
		}
	}
	if _, ok := fe.Device(testUID); ok || len(fe.removed) != 1 {
		t.Errorf("after unstage: device still exposed or removed %d times", len(fe.removed))
	}
	if r, _ := s.records.load("v"); r != nil {
		t.Errorf("record after unstage: %+v", r)
	}
}

func TestNodeInfoAndCapabilities(t *testing.T) {
	s, _ := newTestServer(t)
	info, err := s.NodeGetInfo(t.Context(), &csi.NodeGetInfoRequest{})
	if err != nil || info.NodeId != "node-a" || info.GetAccessibleTopology().GetSegments()[driver.TopologyKeyNode] != "node-a" {
		t.Fatalf("NodeGetInfo = %v, %v", info, err)
	}
	caps, err := s.NodeGetCapabilities(context.Background(), &csi.NodeGetCapabilitiesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[csi.NodeServiceCapability_RPC_Type]bool{}
	for _, c := range caps.Capabilities {
		got[c.GetRpc().GetType()] = true
	}
	for _, want := range []csi.NodeServiceCapability_RPC_Type{
		csi.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME, csi.NodeServiceCapability_RPC_EXPAND_VOLUME,
		csi.NodeServiceCapability_RPC_GET_VOLUME_STATS, csi.NodeServiceCapability_RPC_GET_VOLUME_HEALTH,
		csi.NodeServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER,
	} {
		if !got[want] {
			t.Errorf("capability %s not advertised", want)
		}
	}
}

func TestRecordsAreAtomicAndListed(t *testing.T) {
	rs := records{dir: filepath.Join(t.TempDir(), "csi")}
	r := &record{VolumeID: "pvc-1/odd name", StoreUUID: testStore, VolumeUID: testUID, StagingPath: "/s", AccessType: accessMount,
		Targets: map[string]target{"/t": {AccessType: accessMount, Readonly: true}}}
	if err := rs.save(r); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rs.dir, "broken.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, errs := rs.list()
	if len(got) != 1 || got[0].VolumeID != r.VolumeID || !got[0].Targets["/t"].Readonly || len(errs) != 1 {
		t.Fatalf("list = %+v, %v", got, errs)
	}
	entries, _ := os.ReadDir(rs.dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
	if err := rs.remove(r.VolumeID); err != nil {
		t.Fatal(err)
	}
	if again, err := rs.load(r.VolumeID); again != nil || err != nil {
		t.Errorf("load after remove = %+v, %v", again, err)
	}
	if err := rs.remove(r.VolumeID); err != nil {
		t.Errorf("second remove: %v", err)
	}
}
