package app

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/cobaltstore/cobalt/node-daemon/metrics"
	"github.com/cobaltstore/cobalt/node-daemon/objstore/memstore"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
)

// memEngine is a test Engine: mkfs writes a real Cobalt label on the device (so device inspection
// sees a store, with its metadata region when the request names no directory), data lives in
// memstores kept across "restarts" of the daemon.
type memEngine struct {
	mu     sync.Mutex
	stores map[string]*memstore.Store
	closed map[string]int
	mkfs   int
	// requests are the mkfs requests, in order.
	requests []MkfsRequest
}

// The metadata region memEngine's labels name for stores with their metadata on the device.
const memMetaOffset, memMetaLength = 1 << 20, 1 << 20

func newMemEngine() *memEngine {
	return &memEngine{stores: map[string]*memstore.Store{}, closed: map[string]int{}}
}

func (e *memEngine) Mkfs(_ context.Context, req MkfsRequest) error {
	id, err := uuid.Parse(req.UUID)
	if err != nil {
		return err
	}
	dev, err := blockdev.Open(req.DevicePath, blockdev.Options{Buffered: true, CreateSize: req.CreateSize})
	if err != nil {
		return err
	}
	defer dev.Close()
	label := blockdev.Label{UUID: id, DeviceSize: dev.Size(), MinAllocSize: 4096, BlockSize: uint32(dev.BlockSize()), Created: time.Now(),
		ClusterID: req.ClusterID}
	switch {
	case req.MetadataDevicePath != "":
		// Metadata on a separate device, as the engine records it (label version 4): that
		// device's label names the store and the region.
		md, err := blockdev.Open(req.MetadataDevicePath, blockdev.Options{Buffered: true})
		if err != nil {
			return err
		}
		ml := label
		ml.DeviceSize, ml.MetadataDevice, ml.MetaOffset, ml.MetaLength = md.Size(), true, memMetaOffset, memMetaLength
		err = blockdev.WriteLabel(md, ml)
		if cerr := md.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		label.MetaOnSeparateDevice = true
	case req.DBDir == "":
		// Metadata on the device, as the engine records it (label version 2).
		label.MetaOffset, label.MetaLength = memMetaOffset, memMetaLength
	}
	if err := blockdev.WriteLabel(dev, label); err != nil {
		return err
	}
	e.mu.Lock()
	e.requests = append(e.requests, req)
	e.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stores[req.UUID] = memstore.New(req.UUID, dev.Size()-1<<20)
	e.mkfs++
	return nil
}

type memMounted struct {
	*memstore.Store
	e *memEngine
	// legacyDBDir is the directory a store without a metadata region mounted from; location
	// describes where the metadata is as the engine would.
	legacyDBDir, location string
	// metaDev is the separate metadata device it mounted with ("" for none).
	metaDev string
}

func (m memMounted) Snapshot() metrics.StoreSnapshot {
	fs, _ := m.Statfs(context.Background())
	return metrics.StoreSnapshot{UUID: m.UUID(), TotalBytes: fs.Total, UsedBytes: fs.Used, CacheType: "2q", CacheShards: []metrics.Shard{{Hits: 3, Misses: 1}},
		MetadataOnDevice: m.legacyDBDir == "", MetadataLocation: m.location, MetadataDevice: m.metaDev}
}

func (m memMounted) Close() error {
	m.e.mu.Lock()
	defer m.e.mu.Unlock()
	m.e.closed[m.UUID()]++
	return nil
}

// Open mounts as the engine does: after ClaimLabel (a store of another cluster is refused, one
// to adopt gets its label rewritten), from the label's metadata region, or from legacyDBDir,
// which a store without one needs.
func (e *memEngine) Open(_ context.Context, req OpenRequest) (MountedStore, error) {
	legacyDBDir := req.LegacyDBDir
	dev, err := blockdev.Open(req.DevicePath, blockdev.Options{Buffered: true})
	if err != nil {
		return nil, err
	}
	defer dev.Close()
	l, err := blockdev.ReadLabel(dev)
	if err != nil {
		return nil, err
	}
	adopted, err := ClaimLabel(l, req)
	if err != nil {
		return nil, err
	}
	if adopted != nil {
		if err := blockdev.RewriteLabel(dev, *adopted); err != nil {
			return nil, err
		}
	}
	m := memMounted{e: e, location: fmt.Sprintf("device region [%d, +%d)", l.MetaOffset, l.MetaLength)}
	switch {
	case l.MetaOnSeparateDevice:
		if err := memCheckMetaDevice(l, req.MetadataDevicePath); err != nil {
			return nil, err
		}
		m.metaDev = req.MetadataDevicePath
		m.location = fmt.Sprintf("metadata device region [%d, +%d) on %s", memMetaOffset, memMetaLength, req.MetadataDevicePath)
	case req.MetadataDevicePath != "":
		return nil, fmt.Errorf("store %s has no separate metadata device, but one was given", l.UUIDString())
	case !l.MetaOnDevice():
		if legacyDBDir == "" {
			return nil, fmt.Errorf("store %s keeps its metadata in a host directory and none was given", l.UUIDString())
		}
		m.legacyDBDir, m.location = legacyDBDir, "directory "+legacyDBDir
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	st, ok := e.stores[l.UUIDString()]
	if !ok {
		return nil, fmt.Errorf("no store %s", l.UUIDString())
	}
	m.Store = st
	return m, nil
}

// memCheckMetaDevice checks, as the engine does, that path is the metadata device of the store
// whose data device carries l.
func memCheckMetaDevice(l blockdev.Label, path string) error {
	if path == "" {
		return fmt.Errorf("store %s keeps its metadata on a separate metadata device, and none was given", l.UUIDString())
	}
	md, err := blockdev.Open(path, blockdev.Options{Buffered: true})
	if err != nil {
		return err
	}
	defer md.Close()
	ml, err := blockdev.ReadLabel(md)
	if err != nil {
		return err
	}
	if !ml.MetadataDevice || ml.UUID != l.UUID {
		return fmt.Errorf("%s is not the metadata device of store %s", path, l.UUIDString())
	}
	return nil
}
