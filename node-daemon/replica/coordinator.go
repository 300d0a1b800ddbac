package replica

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// DefaultReplicaTimeout bounds one operation on one replica when Config.ReplicaTimeout is 0.
const DefaultReplicaTimeout = 30 * time.Second

// Replica is one copy of a volume as the coordinator sees it: the local one (Local) or one on
// another node (Remote). Every call carries the coordinator's generation.
type Replica interface {
	// Name identifies the replica to the coordinator and its InSyncRecorder.
	Name() string
	// Write writes data at off; durable when it returns nil.
	Write(ctx context.Context, gen uint64, off int64, data []byte) error
	// Trim discards [off, off+length); durable when it returns nil.
	Trim(ctx context.Context, gen uint64, off, length int64) error
	// Flush returns once every write the replica acknowledged before it is durable.
	Flush(ctx context.Context, gen uint64) error
	// Read reads length bytes at off.
	Read(ctx context.Context, gen uint64, off, length int64) ([]byte, error)
}

// InSyncRecorder records that a replica left the volume's in-sync set (in the Volume's status,
// through the API server, in the daemon). The coordinator acknowledges a write without a replica
// only after DropReplica returned nil for it.
type InSyncRecorder interface {
	DropReplica(ctx context.Context, replica, reason string) error
}

// Config configures a Coordinator.
type Config struct {
	// Generation is the attachment generation (>= 1) every request carries.
	Generation uint64
	// Local is the replica on the coordinator's node, if there is one; reads prefer it.
	Local Replica
	// Remotes are the replicas on other nodes.
	Remotes []Replica
	// Recorder records dropped replicas. Required.
	Recorder InSyncRecorder
	// RegionSize is the dirty log's granularity (0: DefaultRegionSize).
	RegionSize int64
	// DirtyStore keeps the dirty log durably, normally on the local replica
	// (Local.DirtyStore(Generation)); Open loads the log it holds, so a Resync after the
	// coordinator restarted still copies every region written without the returning replica.
	// Nil keeps the log in memory only (after a restart only a Rebuild is then safe).
	DirtyStore DirtyStore
	// DirtyReplica names the replica whose volume keeps DirtyStore ("" when it is not one of the
	// volume's replicas, or not known). When a save of the log fails and that replica did not
	// confirm the write or trim that needed it (it failed it, or is not in sync), the store is
	// taken to have failed with its replica and the log is detached (DirtyLog.Detach) instead of
	// failing the operation; OnDirtyDetached is told.
	DirtyReplica string
	// OnDirtyDetached, if set, is called (once) when the log is detached that way, with the save's
	// error.
	OnDirtyDetached func(replica string, err error)
	// ReplicaTimeout bounds one operation on one replica; a replica that does not answer in time
	// has failed it (0: DefaultReplicaTimeout).
	ReplicaTimeout time.Duration
	// IntentClearInterval is how often at most a write starts, in the background, the clearing
	// of the write intent of the regions idle that long (ClearIdleIntent); 0 picks
	// DefaultIntentClearInterval and a negative value starts none (only ClearIdleIntent,
	// ClearAllIntent and Close clear).
	IntentClearInterval time.Duration
}

// member is one replica of the coordinator.
type member struct {
	r     Replica
	local bool
	// catching is set for a replica being rebuilt or resynced: it takes writes, trims and
	// flushes but serves no reads and does not count for acknowledgement (see Rebuild).
	catching bool
}

// Coordinator runs the I/O of one replicated volume on the node where it is staged (see the
// package documentation for its rules). It is safe for concurrent use.
type Coordinator struct {
	gen      uint64
	recorder InSyncRecorder
	dirty    *DirtyLog
	// dirtyReplica and onDetached: Config.DirtyReplica and OnDirtyDetached; detachOnce guards the
	// detaching (markDirty).
	dirtyReplica string
	onDetached   func(string, error)
	detachOnce   sync.Once
	timeout      time.Duration
	// bufs holds the buffers that copies read their source's chunks into.
	bufs bufPool
	// gate is held shared by every write and trim until it is acknowledged or failed, and taken
	// exclusively (then released at once) by Flush to wait for the ones that started before it.
	gate sync.RWMutex
	// dropMu serializes DropReplica calls, so a replica is recorded once and a write that finds
	// a drop of its replica running waits for its outcome.
	dropMu sync.Mutex
	// regions serializes each copy or comparison of a region, and each clearing of its write
	// intent, with the writes and trims that touch it (see Rebuild). Lock order: gate before
	// regions (writes, ClearAllIntent and Close take both); nothing holding a region lock waits
	// for the gate.
	regions regionLocks
	// intent tracks the write intent this coordinator's writes left on the replicas.
	intent intentTracker
	// mu guards the fields in this struct.
	mu struct {
		sync.Mutex
		members []member // the local one first; replaced, never modified in place
		inSync  map[string]bool
		// catchingUp holds the replicas being rebuilt or resynced, with the first write, trim or
		// flush they failed (nil while none did).
		catchingUp map[string]*catchUp
		fenced     error // set once a replica refused the generation
	}
}

// Open builds a coordinator and claims every replica for cfg.Generation with a flush, so that
// from then on they refuse every older generation. A replica that fails the claim is dropped like
// one that fails a write; a replica that has accepted a newer generation fails Open with
// ErrFenced.
func Open(ctx context.Context, cfg Config) (*Coordinator, error) {
	if cfg.Generation == 0 {
		return nil, errors.New("replica: coordinator needs a generation of at least 1")
	}
	if cfg.Recorder == nil {
		return nil, errors.New("replica: coordinator needs an InSyncRecorder")
	}
	c := &Coordinator{gen: cfg.Generation, recorder: cfg.Recorder, timeout: cfg.ReplicaTimeout}
	if c.timeout == 0 {
		c.timeout = DefaultReplicaTimeout
	}
	var dirty *DirtyLog
	var err error
	if cfg.DirtyStore != nil {
		dirty, err = OpenDirtyLog(ctx, cfg.RegionSize, cfg.DirtyStore)
	} else {
		dirty, err = NewDirtyLog(cfg.RegionSize)
	}
	if errors.Is(err, ErrStaleGeneration) {
		return nil, fmt.Errorf("replica: open: %w (generation %d): %w", ErrFenced, cfg.Generation, err)
	}
	if err != nil {
		return nil, err
	}
	c.dirty = dirty
	c.dirtyReplica, c.onDetached = cfg.DirtyReplica, cfg.OnDirtyDetached
	c.intent.init(cfg.IntentClearInterval)
	c.mu.inSync = make(map[string]bool)
	c.mu.catchingUp = make(map[string]*catchUp)
	add := func(r Replica, local bool) error {
		if r == nil {
			return errors.New("replica: nil replica in coordinator config")
		}
		if _, dup := c.mu.inSync[r.Name()]; dup || r.Name() == "" {
			return fmt.Errorf("replica: replica name %q is empty or not unique", r.Name())
		}
		c.mu.members = append(c.mu.members, member{r: r, local: local})
		c.mu.inSync[r.Name()] = true
		return nil
	}
	if cfg.Local != nil {
		if err := add(cfg.Local, true); err != nil {
			return nil, err
		}
	}
	for _, r := range cfg.Remotes {
		if err := add(r, false); err != nil {
			return nil, err
		}
	}
	if len(c.mu.members) == 0 {
		return nil, errors.New("replica: coordinator without replicas")
	}
	if err := c.Flush(ctx); err != nil {
		return nil, fmt.Errorf("replica: claim generation %d: %w", c.gen, err)
	}
	return c, nil
}

// Generation is the coordinator's attachment generation.
func (c *Coordinator) Generation() uint64 { return c.gen }

// Dirty is the log of regions written while a replica was out of sync.
func (c *Coordinator) Dirty() *DirtyLog { return c.dirty }

// InSync returns the names of the in-sync replicas, in configuration order (the local one first).
func (c *Coordinator) InSync() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, m := range c.mu.members {
		if c.mu.inSync[m.r.Name()] {
			out = append(out, m.r.Name())
		}
	}
	return out
}

// Remove takes the replica named name out of the coordinator, once no write or trim is in
// flight: it gets no more I/O, serves no reads, and is neither in sync nor catching up. Its user
// removes a copy that left the volume (retired): a later replica of the same name is another copy
// (the same volume ID recreated, empty) and only a Rebuild may bring it in, never a Resync from
// the old one's dirty regions. It reports whether name was a member. The dirty regions kept for
// name stay until a Rebuild of that name forgets them (a superset is harmless).
func (c *Coordinator) Remove(name string) bool {
	c.gate.Lock()
	defer c.gate.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	members := make([]member, 0, len(c.mu.members))
	for _, m := range c.mu.members {
		if m.r.Name() != name {
			members = append(members, m)
		}
	}
	was := len(members) != len(c.mu.members)
	c.mu.members = members
	delete(c.mu.inSync, name)
	delete(c.mu.catchingUp, name)
	c.intent.unvouch(name) // a later replica of the name is another copy
	return was
}

// inSyncMembers returns the in-sync replicas, or the error that stops all I/O.
func (c *Coordinator) inSyncMembers() ([]member, error) {
	return c.ioMembers(false)
}

// ioMembers returns the in-sync replicas and, with catching, the catching-up ones that have not
// failed (after the in-sync ones), or the error that stops all I/O.
func (c *Coordinator) ioMembers(catching bool) ([]member, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.fenced != nil {
		return nil, c.mu.fenced
	}
	var out []member
	for _, m := range c.mu.members {
		if c.mu.inSync[m.r.Name()] {
			out = append(out, m)
		}
	}
	if len(out) > 0 && catching {
		for _, m := range c.mu.members {
			if cu := c.mu.catchingUp[m.r.Name()]; cu != nil && cu.err == nil {
				m.catching = true
				out = append(out, m)
			}
		}
	}
	if len(out) == 0 {
		return nil, ErrNoInSyncReplica
	}
	return out, nil
}

// fence stops the coordinator for good after a replica refused its generation.
func (c *Coordinator) fence(err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.fenced == nil {
		c.mu.fenced = fmt.Errorf("%w (generation %d): %w", ErrFenced, c.gen, err)
	}
	return c.mu.fenced
}

// Write writes data at off on every in-sync replica in parallel and returns once all of them have
// it, or once the ones that failed are recorded as dropped (see the package documentation).
func (c *Coordinator) Write(ctx context.Context, off int64, data []byte) error {
	c.gate.RLock()
	defer c.gate.RUnlock()
	defer c.regions.lockShared(off, int64(len(data)), c.dirty.RegionSize())()
	err := c.fanOut(ctx, "write", off, int64(len(data)), func(ctx context.Context, r Replica) error {
		return r.Write(ctx, c.gen, off, data)
	})
	c.noteWritten(off, int64(len(data)), err)
	return err
}

// Trim discards [off, off+length) on every in-sync replica, with the same rules as Write.
func (c *Coordinator) Trim(ctx context.Context, off, length int64) error {
	c.gate.RLock()
	defer c.gate.RUnlock()
	defer c.regions.lockShared(off, length, c.dirty.RegionSize())()
	err := c.fanOut(ctx, "trim", off, length, func(ctx context.Context, r Replica) error {
		return r.Trim(ctx, c.gen, off, length)
	})
	c.noteWritten(off, length, err)
	return err
}

// Flush returns once every write and trim acknowledged before it is durable on every in-sync
// replica: it waits for the writes in flight when it was called, then flushes every in-sync
// replica in parallel. Replicas being rebuilt or resynced are flushed too.
func (c *Coordinator) Flush(ctx context.Context) error {
	c.gate.Lock()
	barrier := c.intent.barrier() // every write that ended before the flush is below it
	c.gate.Unlock()
	err := c.fanOut(ctx, "flush", 0, 0, func(ctx context.Context, r Replica) error {
		return r.Flush(ctx, c.gen)
	})
	if err == nil {
		c.intent.flushedTo(barrier)
	}
	return err
}

// fanOut runs op on every in-sync and catching-up replica in parallel (the local one in the
// calling goroutine when it is in sync). For a write or trim (length > 0) the range is marked
// dirty for every replica that did not confirm it, before the operation returns. A catching-up
// replica that fails is only marked failed (its rebuild or resync then fails): it was never in
// sync, so nobody records a drop and it does not count for the acknowledgement.
func (c *Coordinator) fanOut(ctx context.Context, op string, off, length int64, do func(context.Context, Replica) error) error {
	members, err := c.ioMembers(true)
	if err != nil {
		return fmt.Errorf("replica: %s at %d: %w", op, off, err)
	}
	errs := make([]error, len(members))
	// The replicas' operations do not end with the caller's context: a caller that gives up
	// must not leave a write applied on some replicas and canceled on others without a drop.
	// Each is bounded by the replica timeout instead.
	detached := context.WithoutCancel(ctx)
	run := func(i int) {
		rctx, cancel := context.WithTimeout(detached, c.timeout)
		defer cancel()
		errs[i] = do(rctx, members[i].r)
	}
	var wg sync.WaitGroup
	for i := 1; i < len(members); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run(i)
		}()
	}
	run(0)
	wg.Wait()

	confirmed := make(map[string]bool, len(members))
	var failed []int
	inSyncConfirmed := 0
	for i, e := range errs {
		switch {
		case e == nil:
			confirmed[members[i].r.Name()] = true
			if !members[i].catching {
				inSyncConfirmed++
			}
		case errors.Is(e, ErrStaleGeneration):
			// A newer coordinator took over: this one must stop, and must not drop anyone.
			merr := c.markDirty(detached, off, length, confirmed)
			return errors.Join(fmt.Errorf("replica: %s at %d: %w", op, off, c.fence(e)), merr)
		case members[i].catching:
			c.failCatchUp(members[i].r.Name(), fmt.Errorf("%s at %d (%d bytes): %w", op, off, length, e))
		default:
			failed = append(failed, i)
		}
	}
	// The marks are durable before the write can be acknowledged (or a replica dropped for it):
	// a write whose marks are not durable fails.
	if err := c.markDirty(detached, off, length, confirmed); err != nil {
		if errors.Is(err, ErrStaleGeneration) {
			err = c.fence(err)
		}
		return fmt.Errorf("replica: %s at %d: %w", op, off, err)
	}
	if len(failed) == 0 {
		return nil
	}
	if inSyncConfirmed == 0 {
		return fmt.Errorf("replica: %s at %d failed on every in-sync replica: %w", op, off, errors.Join(errsOf(errs, failed)...))
	}
	for _, i := range failed {
		reason := fmt.Sprintf("%s at %d (%d bytes) failed: %v", op, off, length, errs[i])
		if err := c.drop(detached, members[i].r.Name(), reason); err != nil {
			return fmt.Errorf("replica: %s at %d failed on replica %s and dropping it was not recorded: %w", op, off, members[i].r.Name(), err)
		}
	}
	return nil
}

func errsOf(errs []error, idx []int) []error {
	out := make([]error, 0, len(idx))
	for _, i := range idx {
		out = append(out, errs[i])
	}
	return out
}

// markDirty marks [off, off+length) for every replica not in confirmed, durably when the log has
// a store.
func (c *Coordinator) markDirty(ctx context.Context, off, length int64, confirmed map[string]bool) error {
	if length <= 0 {
		return nil
	}
	c.mu.Lock()
	members := c.mu.members
	c.mu.Unlock()
	var missed []string
	for _, m := range members {
		if !confirmed[m.r.Name()] {
			missed = append(missed, m.r.Name())
		}
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	err := c.dirty.Mark(ctx, off, length, missed...)
	if err == nil || errors.Is(err, ErrStaleGeneration) || c.dirtyReplica == "" || confirmed[c.dirtyReplica] {
		return err
	}
	// The log's own replica did not confirm this operation: it failed it, or it is not in sync.
	// Its store failing with it must not stop the volume's I/O on the replicas that work: the log
	// lives in memory from now on (the marks it holds stay, this mark included).
	c.detachOnce.Do(func() {
		c.dirty.Detach()
		if c.onDetached != nil {
			c.onDetached(c.dirtyReplica, err)
		}
	})
	return c.dirty.Mark(ctx, off, length, missed...)
}

// drop records that replica left the in-sync set and then takes it out; it keeps the replica in
// sync and returns the recorder's error when recording fails.
func (c *Coordinator) drop(ctx context.Context, replica, reason string) error {
	c.dropMu.Lock()
	defer c.dropMu.Unlock()
	c.mu.Lock()
	in := c.mu.inSync[replica]
	c.mu.Unlock()
	if !in {
		return nil // already recorded by another operation
	}
	if err := c.recorder.DropReplica(ctx, replica, reason); err != nil {
		return fmt.Errorf("record drop of replica %s: %w", replica, err)
	}
	c.mu.Lock()
	c.mu.inSync[replica] = false
	c.mu.Unlock()
	c.intent.unvouch(replica)
	return nil
}

// Read reads length bytes at off from the local replica when it is in sync, otherwise from an
// in-sync remote one; when a replica fails the read the next in-sync one is tried. A failed read
// drops no replica.
func (c *Coordinator) Read(ctx context.Context, off, length int64) ([]byte, error) {
	members, err := c.inSyncMembers()
	if err != nil {
		return nil, fmt.Errorf("replica: read at %d: %w", off, err)
	}
	var errs []error
	for _, m := range members { // the local replica comes first when it is in sync
		rctx, cancel := context.WithTimeout(ctx, c.timeout)
		data, err := m.r.Read(rctx, c.gen, off, length)
		cancel()
		if err == nil {
			return data, nil
		}
		if errors.Is(err, ErrStaleGeneration) {
			return nil, fmt.Errorf("replica: read at %d: %w", off, c.fence(err))
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("replica: read at %d failed on every in-sync replica: %w", off, errors.Join(errs...))
}
