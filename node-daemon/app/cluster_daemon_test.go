package app

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/node-daemon/devices"
)

// recordingEngines hands out one Engine and records the settings it was asked for.
type recordingEngines struct {
	eng Engine
	mu  sync.Mutex
	got []EngineConfig
}

func (r *recordingEngines) newEngine(ec EngineConfig) Engine {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, ec)
	return r.eng
}

// TestDaemonTakesDevicesAndEngineFromTheStorageCluster: no device or engine flag exists; a
// daemon whose StorageCluster asks for a 96Mi file-backed device and particular engine settings
// prepares exactly that device and builds its engine with exactly those settings.
func TestDaemonTakesDevicesAndEngineFromTheStorageCluster(t *testing.T) {
	tc := newTestCluster(t)
	stateDir := t.TempDir()
	cfg := tc.baseConfig("node-file", stateDir)
	tc.applyCluster(t, storagev1alpha1.StorageClusterSpec{
		Devices: storagev1alpha1.DeviceSelection{File: &storagev1alpha1.FileDevice{Size: resource.MustParse("96Mi")}},
		Engine: storagev1alpha1.EngineSettings{CacheType: storagev1alpha1.CacheTypeLRU, CacheShards: intstr.FromInt32(5),
			MemoryTarget: resource.MustParse("128Mi"), MinAllocSize: 8192, DeferredWriteThreshold: ptr.To[int64](0),
			ChecksumType: storagev1alpha1.ChecksumCRC32C},
	})
	engines := &recordingEngines{eng: newMemEngine()}
	mgr, err := NewManager(context.Background(), restConfig, cfg, engines.newEngine, testr.New(t))
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	want := EngineConfig{CacheType: "lru", CacheShards: 5, MemoryTarget: 128 << 20, MinAllocSize: 8192, DeferredWriteThreshold: 0, Checksum: "crc32c"}
	if len(engines.got) != 1 || engines.got[0] != want {
		t.Fatalf("engines made with %+v, want one with %+v", engines.got, want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
	})

	file := filepath.Join(stateDir, devices.FileDeviceName)
	st := readyStore(t, "node-file", file)
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != 96<<20 {
		t.Fatalf("file device is %d bytes, want the spec's 96Mi", fi.Size())
	}
	if st.Spec.DevicePath != file {
		t.Fatalf("Store device path = %q, want %q", st.Spec.DevicePath, file)
	}
}

// TestDaemonWithoutItsStorageClusterDoesNotStart: a missing StorageCluster is an error that
// names it (the process exits non-zero and the DaemonSet restarts it); nothing is prepared.
func TestDaemonWithoutItsStorageClusterDoesNotStart(t *testing.T) {
	tc := newTestCluster(t)
	cfg := tc.baseConfig("node-none", t.TempDir())
	eng := newMemEngine()
	_, err := NewManager(context.Background(), restConfig, cfg, func(EngineConfig) Engine { return eng }, testr.New(t))
	if err == nil || !strings.Contains(err.Error(), "StorageCluster "+tc.namespace+"/"+testClusterName+" does not exist") {
		t.Fatalf("NewManager without a StorageCluster: %v, want an error naming it", err)
	}
	if _, err := os.Stat(cfg.StoresDir()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the stores directory was made (%v)", err)
	}
}

// TestDaemonChecksItsStorageClusterUID: with --cluster-uid (the operator always sets it), a daemon
// whose StorageCluster has another UID, because it was deleted and created again under the same
// name, does not start and says why; with the right UID it starts and takes the UID as the
// cluster identity.
func TestDaemonChecksItsStorageClusterUID(t *testing.T) {
	tc := newTestCluster(t)
	sc := tc.applyCluster(t, storagev1alpha1.StorageClusterSpec{
		Devices: storagev1alpha1.DeviceSelection{File: &storagev1alpha1.FileDevice{Size: resource.MustParse("64Mi")}}})
	for _, c := range []struct {
		name, uid string
		wantErr   string
	}{
		{"recreated cluster", "7d0e6c5b-2f1a-4b3c-8d9e-0a1b2c3d4e5f", "was deleted and created again"},
		{"same cluster", string(sc.UID), ""},
		{"no uid given", "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := tc.baseConfig("node-uid", t.TempDir())
			cfg.ClusterUID = c.uid
			eng := newMemEngine()
			_, err := NewManager(context.Background(), restConfig, cfg, func(EngineConfig) Engine { return eng }, testr.New(t))
			if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr) || !strings.Contains(err.Error(), string(sc.UID))) {
				t.Fatalf("NewManager with --cluster-uid %q: %v, want error %q", c.uid, err, c.wantErr)
			}
		})
	}
	if _, err := ParseClusterID(string(sc.UID)); err != nil {
		t.Fatalf("the API server's UID %s is no cluster ID: %v", sc.UID, err)
	}
}

// TestDaemonMakesNoNewStoreWhileItsClusterIsBeingDeleted: while the StorageCluster is being
// deleted (a finalizer holds it), a starting daemon mounts the stores it has, so their Volumes
// can still be read, but formats no new device; the device's Store says why.
func TestDaemonMakesNoNewStoreWhileItsClusterIsBeingDeleted(t *testing.T) {
	ctx := context.Background()
	tc := newTestCluster(t)
	devDir, stateDir := t.TempDir(), t.TempDir()
	old := sparseFile(t, devDir, "old.img", 64<<20, 0, nil)
	fresh := sparseFile(t, devDir, "fresh.img", 64<<20, 0, nil)
	eng := newMemEngine()
	cfg := tc.config(t, "node-del", stateDir, old)
	d := startDaemon(t, cfg, eng)
	readyStore(t, "node-del", old)
	d.stop(t)

	// The cluster gains a device, then is deleted; a finalizer (the operator's) holds it.
	cfg = tc.config(t, "node-del", stateDir, old, fresh)
	sc := &storagev1alpha1.StorageCluster{}
	if err := k8sClient.Get(ctx, cfg.Cluster(), sc); err != nil {
		t.Fatal(err)
	}
	controllerutil.AddFinalizer(sc, "test.cobalt.io/hold")
	if err := k8sClient.Update(ctx, sc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := k8sClient.Get(ctx, cfg.Cluster(), sc); err == nil {
			controllerutil.RemoveFinalizer(sc, "test.cobalt.io/hold")
			if err := k8sClient.Update(ctx, sc); err != nil {
				t.Errorf("release the StorageCluster: %v", err)
			}
		}
	})
	if err := k8sClient.Delete(ctx, sc, client.PropagationPolicy("Background")); err != nil {
		t.Fatal(err)
	}

	startDaemon(t, cfg, eng)
	readyStore(t, "node-del", old)
	gomega.NewWithT(t).Eventually(func() error {
		st, err := getStore(storeName("node-del", fresh))
		if err != nil {
			return err
		}
		if !strings.Contains(st.Status.NotUsedReason, "is being deleted: no new store is made") {
			return errors.New("reason: " + st.Status.NotUsedReason)
		}
		return nil
	}, 20*time.Second, 50*time.Millisecond).Should(gomega.Succeed())
	if eng.mkfs != 1 {
		t.Fatalf("mkfs ran %d times, want 1 (only before the deletion)", eng.mkfs)
	}
}

// TestSettingsDefaultsAreTheCRDs: an empty spec.engine converts to the same settings as the spec
// the API server stored for it, with the CRD's defaults filled in (so a daemon never depends on
// whether the defaults were applied, and the two sets of defaults cannot drift apart).
func TestSettingsDefaultsAreTheCRDs(t *testing.T) {
	tc := newTestCluster(t)
	spec := storagev1alpha1.StorageClusterSpec{Devices: storagev1alpha1.DeviceSelection{Paths: []string{"/dev/sdb"}}}
	stored := tc.applyCluster(t, spec)
	if stored.Spec.Engine.CacheType == "" || stored.Spec.Engine.DeferredWriteThreshold == nil {
		t.Fatalf("the API server applied no defaults: %+v", stored.Spec.Engine)
	}
	fromStored, err := SettingsFromSpec(&stored.Spec, "/dev", 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	fromEmpty, err := SettingsFromSpec(&spec, "/dev", 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	if fromStored.Engine != fromEmpty.Engine {
		t.Fatalf("engine from the defaulted spec %+v, from the empty one %+v", fromStored.Engine, fromEmpty.Engine)
	}
}
