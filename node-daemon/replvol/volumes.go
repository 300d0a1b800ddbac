package replvol

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/types"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/node-daemon/csinode"
	"github.com/cobaltstore/cobalt/node-daemon/replica"
)

// Volumes opens replicated Volumes on this node (csinode.ReplicatedVolumes). It is safe for
// concurrent use.
type Volumes struct {
	opts Options
	// mu guards the fields in this struct.
	mu struct {
		sync.Mutex
		// open holds the open volumes by UID; nil while an Open of that UID runs.
		open map[string]*backend
	}
}

// ErrAlreadyOpen: the volume is open (or being opened) on this node already; two coordinators of
// one volume on one node would share its generation and its dirty log. Close the first.
var ErrAlreadyOpen = errors.New("replvol: the volume is already open on this node")

var _ csinode.ReplicatedVolumes = (*Volumes)(nil)

// New validates opts and returns Volumes.
func New(opts Options) (*Volumes, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("replvol: options: %w", err)
	}
	v := &Volumes{opts: opts}
	v.mu.open = make(map[string]*backend)
	return v, nil
}

// Open implements csinode.ReplicatedVolumes: it reads the Volume, reaches every copy whose status
// says InSync (the one on this node in-process), opens a coordinator at req.Generation over them
// (which claims them, dropping in status the ones that do not answer), makes the in-sync copies
// equal (reconcile: a takeover or a restart may have left unacknowledged writes on some copies
// only) and starts the volume's sync loop.
func (v *Volumes) Open(ctx context.Context, req csinode.ReplicatedOpen) (csinode.ReplicatedBackend, int64, error) {
	key, err := parseVolume(req.Volume)
	if err != nil {
		return nil, 0, err
	}
	if req.VolumeUID == "" || req.Generation == 0 {
		return nil, 0, fmt.Errorf("replvol: open %s: needs the Volume's UID and an attachment generation >= 1 (got %q, %d)", req.Volume, req.VolumeUID, req.Generation)
	}
	if err := v.reserve(req.VolumeUID); err != nil {
		return nil, 0, fmt.Errorf("replvol: open %s: %w", req.Volume, err)
	}
	be, size, err := v.open(ctx, key, req)
	v.mu.Lock()
	if err != nil {
		delete(v.mu.open, req.VolumeUID)
	} else {
		v.mu.open[req.VolumeUID] = be
	}
	v.mu.Unlock()
	if err != nil {
		return nil, 0, err
	}
	return be, size, nil
}

// reserve marks uid as being opened, or fails with ErrAlreadyOpen.
func (v *Volumes) reserve(uid string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if b, ok := v.mu.open[uid]; ok {
		if b == nil {
			return fmt.Errorf("%w (an Open of it is running)", ErrAlreadyOpen)
		}
		return fmt.Errorf("%w (at generation %d)", ErrAlreadyOpen, b.ref.gen)
	}
	v.mu.open[uid] = nil
	return nil
}

// open opens a reserved volume.
func (v *Volumes) open(ctx context.Context, key types.NamespacedName, req csinode.ReplicatedOpen) (*backend, int64, error) {
	b := newBackend(v, volumeRef{opts: v.opts, key: key, uid: req.VolumeUID, gen: req.Generation})
	vol, err := b.ref.read(ctx)
	if err != nil {
		return nil, 0, err
	}
	if len(vol.Status.Replicas) == 0 {
		return nil, 0, fmt.Errorf("replvol: Volume %s lists no copies in status.replicas (not placed yet): %w", key, csinode.ErrVolumeNotFound)
	}
	size, err := smallestAllocation(vol)
	if err != nil {
		return nil, 0, err
	}
	cfg, members, err := b.members(ctx, vol)
	if err != nil {
		b.abandon()
		return nil, 0, err
	}
	co, err := replica.Open(ctx, cfg)
	if err != nil {
		b.abandon()
		return nil, 0, classifyOpen(key.String(), err, members)
	}
	b.co = co
	if err := b.reconcile(ctx); err != nil {
		b.abandon()
		return nil, 0, err
	}
	b.start()
	v.opts.Log.Info("replicated volume open", "volume", key, "generation", req.Generation, "inSync", co.InSync())
	return b, size, nil
}

// members reaches the copies the status says are InSync and builds the coordinator's
// configuration; it records every copy in b's state.
func (b *backend) members(ctx context.Context, vol *v1alpha1.Volume) (replica.Config, []*watched, error) {
	cfg := replica.Config{Generation: b.ref.gen, Recorder: b, ReplicaTimeout: b.v.opts.ReplicaTimeout,
		OnDirtyDetached: func(store string, err error) {
			b.v.opts.Log.Info("the copy that keeps the dirty log failed with its store: the dirty log lives in memory from now on (after a restart the copies it marks are rebuilt)",
				"volume", b.ref.key, "store", store, "error", err.Error())
		}}
	var members []*watched
	for _, c := range vol.Status.Replicas {
		cs := b.copyState(c)
		if c.State != v1alpha1.ReplicaInSync {
			if c.State != v1alpha1.ReplicaPending && cfg.DirtyStore == nil {
				// A copy on this node that is not in sync can still keep the dirty log.
				if uuid, _, err := b.v.storeOf(ctx, c.Store); err == nil && b.v.opts.Local(uuid) {
					cfg.DirtyStore = replica.NewLocal(b.v.opts.Node, c.Store, uuid, b.ref.uid).DirtyStore(b.ref.gen)
					cfg.DirtyReplica = c.Store
					b.dirtyOn = c.Store
				}
			}
			continue
		}
		var w *watched
		o, err := b.v.openCopy(ctx, c.Store, b.ref.uid)
		if err != nil {
			b.v.opts.Log.Info("in-sync copy unreachable at open: the claim drops it", "volume", b.ref.key, "store", c.Store, "error", err.Error())
			w = &watched{Syncer: unreachable{name: c.Store, err: err}}
		} else {
			w = &watched{Syncer: o.s}
			b.closeLater(o.close)
		}
		members = append(members, w)
		b.mu.Lock()
		cs.member = true
		b.mu.Unlock()
		if o != nil && o.local != nil && cfg.Local == nil {
			cfg.Local = w
			cfg.DirtyStore = o.local.DirtyStore(b.ref.gen)
			cfg.DirtyReplica = c.Store
			b.dirtyOn = c.Store
			continue
		}
		cfg.Remotes = append(cfg.Remotes, w)
	}
	if len(members) == 0 {
		return cfg, nil, fmt.Errorf("replvol: Volume %s has no copy InSync in its status: %w", b.ref.key, csinode.ErrNoInSyncCopy)
	}
	return cfg, members, nil
}

// classifyOpen maps a coordinator's Open error to the csinode errors.
func classifyOpen(volume string, err error, members []*watched) error {
	switch {
	case errors.Is(err, csinode.ErrFenced), errors.Is(err, csinode.ErrVolumeNotFound):
		return fmt.Errorf("replvol: open %s: %w", volume, err)
	case errors.Is(err, replica.ErrFenced), errors.Is(err, replica.ErrStaleGeneration):
		return fmt.Errorf("replvol: open %s: %w: %w", volume, csinode.ErrFenced, err)
	}
	for _, m := range members {
		if !m.failed.Load() {
			return fmt.Errorf("replvol: open %s: %w", volume, err)
		}
	}
	return fmt.Errorf("replvol: open %s: %w: %w", volume, csinode.ErrNoInSyncCopy, err)
}

// smallestAllocation is what every copy can hold: the smallest allocatedSize in status.replicas.
func smallestAllocation(vol *v1alpha1.Volume) (int64, error) {
	size := int64(-1)
	for _, c := range vol.Status.Replicas {
		if c.AllocatedSize == nil {
			continue
		}
		if n := c.AllocatedSize.Value(); size < 0 || n < size {
			size = n
		}
	}
	if size <= 0 {
		return 0, fmt.Errorf("replvol: Volume %s/%s: no copy has an allocatedSize yet", vol.Namespace, vol.Name)
	}
	return size, nil
}

// forget removes a closed backend.
func (v *Volumes) forget(b *backend) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.mu.open[b.ref.uid] == b {
		delete(v.mu.open, b.ref.uid)
	}
}
