package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-logr/logr"
	"github.com/google/uuid"

	"github.com/cobaltstore/cobalt/node-daemon/devices"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
)

// pendingMarker is created in a store's directory (StoresDir/<uuid>) before mkfs and removed,
// with the directory, once mkfs completed; it holds the device path. A marker left by a crash
// makes the next attempt redo mkfs with the same UUID instead of giving the device a second
// identity.
//
// The daemon makes every store with its metadata on the device, or on the separate metadata device
// spec.devices.metadataDevices gives it: once made, a store needs nothing from the state directory
// to mount. Stores made before label version 2 keep their metadata in
// StoresDir/<uuid>/db (legacyDBDir) and still mount from it.
const pendingMarker = "mkfs-pending"

// device is one selected device and what became of it.
type device struct {
	decision devices.Decision
	store    MountedStore // nil when skipped or failed
	// reason says why the device is not used (skip reason or preparation error).
	reason string
	// retired is the store taken out of service because its device failed under it (store is
	// nil then); it is closed with the others when the node stops.
	retired MountedStore
}

// preparer turns device decisions into mounted stores.
type preparer struct {
	cfg *Config
	// sel is the StorageCluster's device selection.
	sel devices.Selection
	// clusterID identifies the cluster this daemon serves: recorded in the label of each store it
	// makes or adopts, and a store that names another cluster is not mounted.
	clusterID [16]byte
	engine    Engine
	// refuseMkfs, when set, is asked just before a new store is made; a non-empty answer skips
	// the device with that reason (formatGuard.refusal: the StorageCluster is being deleted).
	refuseMkfs func(context.Context) string
}

// legacyDBDir is where a store made before label version 2 keeps its metadata on this node.
func (p *preparer) legacyDBDir(id string) string { return filepath.Join(p.cfg.StoresDir(), id, "db") }

// prepareAll inspects and prepares every selected device. It never fails as a whole: a device
// that cannot be prepared is reported with its reason.
func (p *preparer) prepareAll(ctx context.Context) ([]*device, error) {
	paths, err := p.sel.Candidates(p.cfg.SysRoot, p.cfg.StateDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(p.cfg.StoresDir(), 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", p.cfg.StoresDir(), err)
	}
	in := devices.Inspector{SysRoot: p.cfg.SysRoot, MountInfo: p.cfg.MountInfo, StoresDir: p.cfg.StoresDir(), ClusterID: p.clusterID}
	var out []*device
	for _, path := range paths {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		d := &device{decision: in.WithMetadataDevice(in.Inspect(path, p.sel), p.sel, p.pendingFor)}
		if d.decision.Action == devices.Skip {
			d.reason = d.decision.Reason
		} else if reason := p.refusal(ctx, d.decision); reason != "" {
			d.reason = reason
		} else if st, err := p.prepare(ctx, d.decision); err != nil {
			d.reason = "preparation failed: " + err.Error()
		} else {
			d.store = st
		}
		out = append(out, d)
	}
	return out, nil
}

// refusal is why dec, a device that needs a new store, must not get one now ("" when it may,
// and always for a device whose store exists).
func (p *preparer) refusal(ctx context.Context, dec devices.Decision) string {
	if dec.Action != devices.Mkfs || p.refuseMkfs == nil {
		return ""
	}
	return p.refuseMkfs(ctx)
}

// prepare formats (if needed) and mounts one device.
func (p *preparer) prepare(ctx context.Context, dec devices.Decision) (MountedStore, error) {
	// Only a store made before label version 2, found as it is, needs its directory to mount.
	legacyDBDir := ""
	switch dec.Action {
	case devices.Mount:
		if p.pending(dec.StoreUUID) {
			// mkfs wrote the label but did not finish: redo it, the label is ours.
			if err := p.mkfs(ctx, dec, dec.StoreUUID, true); err != nil {
				return nil, err
			}
		} else if !dec.MetaOnDevice {
			legacyDBDir = p.legacyDBDir(dec.StoreUUID)
		}
	case devices.Mkfs:
		id := p.pendingFor(dec.Path)
		if id == "" {
			id = uuid.NewString()
		}
		if err := p.mkfs(ctx, dec, id, dec.Force); err != nil {
			return nil, err
		}
		dec.StoreUUID = id
	default:
		return nil, fmt.Errorf("device %s: unexpected action %s", dec.Path, dec.Action)
	}
	// The engine logs for this store (pebble's lines, background failures) with its name.
	log := logr.FromContextOrDiscard(ctx).WithValues("store", storeName(p.cfg.NodeName, dec.Path), "uuid", dec.StoreUUID)
	req := OpenRequest{DevicePath: dec.Path, LegacyDBDir: legacyDBDir, ClusterID: p.clusterID, Adopt: dec.Adopt, MetadataDevicePath: dec.MetadataDevice}
	if dec.Adopt {
		log.Info("adopting a store whose label names no cluster (label version 2) into this cluster: recording the cluster in its label",
			"cluster", blockdev.FormatUUID(p.clusterID))
	}
	st, err := p.engine.Open(logr.NewContext(ctx, log), req)
	if err != nil {
		return nil, fmt.Errorf("mount store %s on %s: %w", dec.StoreUUID, dec.Path, err)
	}
	return st, nil
}

// mkfs formats dec's device as store id with its metadata on the device, or on dec's separate
// metadata device, idempotently.
func (p *preparer) mkfs(ctx context.Context, dec devices.Decision, id string, force bool) error {
	dir := filepath.Join(p.cfg.StoresDir(), id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if err := writeSynced(filepath.Join(dir, pendingMarker), []byte(dec.Path)); err != nil {
		return err
	}
	req := MkfsRequest{DevicePath: dec.Path, UUID: id, Force: force, ClusterID: p.clusterID, MetadataDevicePath: dec.MetadataDevice}
	if p.sel.FileSize > 0 {
		req.CreateSize = p.sel.FileSize
	}
	if err := p.engine.Mkfs(ctx, req); err != nil {
		return fmt.Errorf("mkfs %s: %w", dec.Path, err)
	}
	if err := os.Remove(filepath.Join(dir, pendingMarker)); err != nil {
		return fmt.Errorf("mkfs %s: clear marker: %w", dec.Path, err)
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	// The store needs nothing here; what an interrupted attempt of an older daemon left (a partial
	// metadata directory) goes too.
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("mkfs %s: clear %s: %w", dec.Path, dir, err)
	}
	return syncDir(p.cfg.StoresDir())
}

func (p *preparer) pending(id string) bool {
	_, err := os.Stat(filepath.Join(p.cfg.StoresDir(), id, pendingMarker))
	return err == nil
}

// pendingFor returns the UUID of an unfinished mkfs of path, or "".
func (p *preparer) pendingFor(path string) string {
	entries, err := os.ReadDir(p.cfg.StoresDir())
	if err != nil {
		return ""
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(p.cfg.StoresDir(), e.Name(), pendingMarker))
		if err == nil && strings.TrimSpace(string(b)) == path {
			return e.Name()
		}
	}
	return ""
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, fs.ErrInvalid) {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
