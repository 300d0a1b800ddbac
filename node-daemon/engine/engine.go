package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/go-logr/logr"

	"github.com/cobaltstore/cobalt/node-daemon/app"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/store"
)

// Settings are the engine settings of the StorageCluster (app.EngineConfig) plus device options.
type Settings struct {
	app.EngineConfig
	// Buffered opens devices without O_DIRECT (only for filesystems that refuse it, e.g. tmpfs).
	Buffered bool
	// QueueDepth bounds I/O in flight per device (0 = blockdev default).
	QueueDepth int
	// GC, when set, is the process's collector budget: each mounted store counts its memory
	// target in it until it is closed (NewGCBudget; the node daemon sets it, tests do not).
	GC *GCBudget
}

// Engine implements app.Engine with the storage engine.
type Engine struct {
	settings Settings
}

var _ app.Engine = (*Engine)(nil)

// New returns an engine with the given settings.
func New(s Settings) *Engine { return &Engine{settings: s} }

func (e *Engine) devOptions(createSize int64) blockdev.Options {
	return blockdev.Options{QueueDepth: e.settings.QueueDepth, Buffered: e.settings.Buffered, CreateSize: createSize, Exclusive: true}
}

// Mkfs implements app.Engine.
func (e *Engine) Mkfs(ctx context.Context, req app.MkfsRequest) (err error) {
	dev, err := blockdev.Open(req.DevicePath, e.devOptions(req.CreateSize))
	if err != nil {
		return fmt.Errorf("engine: mkfs: %w", err)
	}
	opts := store.MkfsOptions{
		Force:        req.Force,
		MinAllocSize: e.settings.MinAllocSize,
		UUID:         req.UUID,
		ClusterID:    req.ClusterID,
	}
	if req.MetadataDevicePath != "" {
		md, err := blockdev.Open(req.MetadataDevicePath, e.devOptions(0))
		if err != nil {
			return errors.Join(fmt.Errorf("engine: mkfs: metadata device: %w", err), dev.Close())
		}
		defer func() { err = errors.Join(err, md.Close()) }()
		opts.MetadataDevice = md
	}
	_, err = store.Mkfs(ctx, dev, req.DBDir, opts)
	return errors.Join(wrap(err), dev.Close())
}

// Open implements app.Engine: the store mounts from the metadata region its label names, from the
// region of req.MetadataDevicePath for a store whose metadata is on a separate device, or, for a
// store made before label version 2, from req.LegacyDBDir. With the device open exclusively it
// repairs a label torn by a crash during a rewrite, refuses a store of another cluster and
// records req's cluster in the label of a store it adopts (app.ClaimLabel), and only then mounts.
// The metadata database logs to the logger in ctx (with the values the caller gave it, such as
// the store's name) for as long as the store is open.
func (e *Engine) Open(ctx context.Context, req app.OpenRequest) (app.MountedStore, error) {
	dev, err := blockdev.Open(req.DevicePath, e.devOptions(0))
	if err != nil {
		return nil, fmt.Errorf("engine: open: %w", err)
	}
	m, err := e.mount(ctx, dev, req)
	if err != nil {
		return nil, err // not a nil *Mounted in a non-nil interface
	}
	return m, nil
}

// mount is Open on an opened device, which it closes when it fails. The store runs on the device,
// and on its separate metadata device if any, watched for I/O errors (watchedDevice): Snapshot
// reports the first one as a Failed health.
func (e *Engine) mount(ctx context.Context, raw blockdev.Device, req app.OpenRequest) (*Mounted, error) {
	dev := watch(raw)
	if err := claim(ctx, dev, req); err != nil {
		return nil, errors.Join(fmt.Errorf("engine: open: %w", err), dev.Close())
	}
	opts := store.Options{
		CacheType:          e.settings.CacheType,
		CacheShards:        e.settings.CacheShards,
		MemoryTarget:       e.settings.MemoryTarget,
		PreferDeferredSize: int(e.settings.DeferredWriteThreshold),
		Logger:             slog.New(logr.ToSlogHandler(logr.FromContextOrDiscard(ctx))),
	}
	var md *watchedDevice
	if req.MetadataDevicePath != "" {
		raw, err := blockdev.Open(req.MetadataDevicePath, e.devOptions(0))
		if err != nil {
			return nil, errors.Join(fmt.Errorf("engine: open: metadata device: %w", err), dev.Close())
		}
		md = watch(raw)
		opts.MetadataDevice = md
	}
	closeDevs := func() error {
		if md == nil {
			return dev.Close()
		}
		return errors.Join(dev.Close(), md.Close())
	}
	st, err := store.Open(ctx, dev, req.LegacyDBDir, opts)
	if err != nil {
		return nil, errors.Join(wrap(err), closeDevs())
	}
	m := &Mounted{st: st, dev: dev, metaDev: md, metaDevPath: req.MetadataDevicePath, cacheType: e.settings.CacheType}
	if e.settings.GC != nil {
		m.gc = e.settings.GC
		gc := m.gc.mounted(st.MemoryTarget())
		logr.FromContextOrDiscard(ctx).V(1).Info("Go collector set for the mounted stores' memory targets", "GOGC", gc.Percent, "memoryLimit", gc.Limit)
	}
	return m, nil
}

// claim checks the label of the store on dev against req (app.ClaimLabel) and rewrites it when req
// adopts the store. A label that fails its checksum while the copy a rewrite leaves is valid (a
// crash tore the rewrite) is repaired first.
func claim(ctx context.Context, dev blockdev.Device, req app.OpenRequest) error {
	log := logr.FromContextOrDiscard(ctx)
	repaired, err := blockdev.RepairLabel(dev)
	if err != nil {
		return err
	}
	if repaired {
		log.Info("repaired the store label from its copy (a label rewrite was interrupted)", "device", req.DevicePath)
	}
	label, err := blockdev.ReadLabel(dev)
	if err != nil {
		return err
	}
	adopted, err := app.ClaimLabel(label, req)
	if err != nil || adopted == nil {
		return err
	}
	if err := blockdev.RewriteLabel(dev, *adopted); err != nil {
		return fmt.Errorf("adopt store %s into cluster %s: %w", label.UUIDString(), adopted.ClusterIDString(), err)
	}
	log.Info("adopted the store into this cluster: its label now names it", "device", req.DevicePath, "cluster", adopted.ClusterIDString())
	return nil
}
