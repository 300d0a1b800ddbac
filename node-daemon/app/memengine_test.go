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
// sees a store), data lives in memstores kept across "restarts" of the daemon.
type memEngine struct {
	mu     sync.Mutex
	stores map[string]*memstore.Store
	closed map[string]int
	mkfs   int
}

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
	if err := blockdev.WriteLabel(dev, blockdev.Label{UUID: id, DeviceSize: dev.Size(), MinAllocSize: 4096, BlockSize: uint32(dev.BlockSize()), Created: time.Now()}); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stores[req.UUID] = memstore.New(req.UUID, dev.Size()-1<<20)
	e.mkfs++
	return nil
}

type memMounted struct {
	*memstore.Store
	e *memEngine
}

func (m memMounted) Snapshot() metrics.StoreSnapshot {
	fs, _ := m.Statfs(context.Background())
	return metrics.StoreSnapshot{UUID: m.UUID(), TotalBytes: fs.Total, UsedBytes: fs.Used, CacheType: "2q", CacheShards: []metrics.Shard{{Hits: 3, Misses: 1}}}
}

func (m memMounted) Close() error {
	m.e.mu.Lock()
	defer m.e.mu.Unlock()
	m.e.closed[m.UUID()]++
	return nil
}

func (e *memEngine) Open(_ context.Context, devicePath, _ string) (MountedStore, error) {
	dev, err := blockdev.Open(devicePath, blockdev.Options{ReadOnly: true, Buffered: true})
	if err != nil {
		return nil, err
	}
	defer dev.Close()
	l, err := blockdev.ReadLabel(dev)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	st, ok := e.stores[l.UUIDString()]
	if !ok {
		return nil, fmt.Errorf("no store %s", l.UUIDString())
	}
	return memMounted{Store: st, e: e}, nil
}
