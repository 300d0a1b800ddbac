package engine

import (
	"testing"

	"github.com/cobaltstore/cobalt/node-daemon/app"
	"github.com/cobaltstore/cobalt/node-daemon/objstore"
	"github.com/cobaltstore/cobalt/node-daemon/objstore/objstoretest"
	"github.com/cobaltstore/cobalt/storage-engine/kv"
)

// TestConformance runs the objstore conformance suite on a 64 MiB file-backed store per check,
// with persistence across reopen, and a deep fsck of what each check left.
func TestConformance(t *testing.T) {
	e := New(Settings{EngineConfig: app.EngineConfig{CacheType: "2q", MinAllocSize: 4096}})
	objstoretest.Run(t, func(t *testing.T) objstoretest.Instance {
		d := newDevice(t, e, 64<<20)
		m := open(t, e, d)
		t.Cleanup(func() {
			if err := m.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			fsck(t, d)
		})
		return objstoretest.Instance{
			Store: m,
			Reopen: func(t *testing.T) objstore.Store {
				t.Helper()
				if err := m.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
				m = open(t, e, d)
				return m
			},
		}
	})
}

// TestNameLimitsMatchTheEngine checks that the contract's name limits are the engine's, so a name
// objstore accepts is one the engine can store.
func TestNameLimitsMatchTheEngine(t *testing.T) {
	if objstore.MaxCollectionName != kv.MaxCollectionName || objstore.MaxObjectName != kv.MaxObjectName {
		t.Fatalf("objstore name limits %d/%d, engine %d/%d", objstore.MaxCollectionName, objstore.MaxObjectName,
			kv.MaxCollectionName, kv.MaxObjectName)
	}
}
