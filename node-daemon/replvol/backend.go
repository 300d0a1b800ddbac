package replvol

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/node-daemon/csinode"
	"github.com/cobaltstore/cobalt/node-daemon/replica"
)

// copyState is what the backend knows of one copy.
type copyState struct {
	node  string
	state v1alpha1.ReplicaState // as the status last said, or as this node wrote it
	// member: the copy was in the coordinator's in-sync set during this Open, so the dirty log
	// holds every region it missed since and a Resync is enough.
	member bool
	// dropped: a drop of the copy was recorded and no sync has put it back in sync since.
	dropped bool
	// drops counts the recorded drops.
	drops uint64
	// syncFailures are the errors of the syncs of the copy that failed since the last one that
	// ended well (at most maxSyncFailures), so a failure that repeats at every try makes one
	// ReplicaSyncFailed event, not one per SyncInterval; failedSource is the source of the last
	// failed one ("" after a sync that ended well), which the next try avoids.
	syncFailures []string
	failedSource string
	// synced counts the bytes copied by kind ("rebuild", "resync"), compared the bytes compared.
	synced   map[string]int64
	compared int64
	// scrubbed counts the bytes scrubs compared on the copy, scrubMismatches the blocks they found
	// bad on it (or undecided between it and another), scrubRepaired the bytes repaired onto it.
	scrubbed, scrubMismatches, scrubRepaired int64
}

// backend is one open replicated volume: its coordinator, its sync loop and the state of its
// copies. It implements csinode.ReplicatedBackend and, for its coordinator,
// replica.InSyncRecorder.
type backend struct {
	v   *Volumes
	ref volumeRef
	co  *replica.Coordinator // set once replica.Open returned
	// dirtyOn is the Store of the copy whose volume keeps the coordinator's dirty log ("" when
	// it lives in memory); set by Open before the loops start.
	dirtyOn string

	cancel   context.CancelFunc
	loops    sync.WaitGroup // the sync loop and the scrub loop
	closed   sync.Once
	closeErr error
	// fenced is done once EventFenced was written.
	fenced sync.Once

	// syncMu serializes the loop's passes (syncOnce), so one copy is never synced twice at once.
	syncMu sync.Mutex
	// scrubMu is held by a running scrub, and by the sync loop while it resyncs or rebuilds a
	// copy (after canceling the scrub), so a scrub never runs beside a sync.
	scrubMu sync.Mutex
	// statusMu serializes the writes of copy states (drops, demotions, promotions), so a copy is
	// never written InSync after a drop the coordinator has recorded for it.
	statusMu sync.Mutex
	// mu guards the fields in this struct.
	mu struct {
		sync.Mutex
		copies  map[string]*copyState
		closers []func() error
		// scrubCancel cancels the running scrub; nil when none runs.
		scrubCancel context.CancelFunc
		// lastScrub is when the last scrub that ran to its end ended.
		lastScrub time.Time
	}
}

var (
	_ csinode.ReplicatedBackend = (*backend)(nil)
	_ replica.InSyncRecorder    = (*backend)(nil)
)

func newBackend(v *Volumes, ref volumeRef) *backend {
	b := &backend{v: v, ref: ref}
	b.mu.copies = make(map[string]*copyState)
	return b
}

// copyState returns the state of the copy of c's Store, made on first use, updated from c.
func (b *backend) copyState(c v1alpha1.VolumeReplica) *copyState {
	b.mu.Lock()
	defer b.mu.Unlock()
	cs := b.mu.copies[c.Store]
	if cs == nil {
		cs = &copyState{synced: map[string]int64{}}
		b.mu.copies[c.Store] = cs
	}
	cs.node, cs.state = c.Node, c.State
	return cs
}

// closeLater registers a stream to close in Close.
func (b *backend) closeLater(close func() error) {
	if close == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.mu.closers = append(b.mu.closers, close)
}

// closeCopies closes every stream registered.
func (b *backend) closeCopies() error {
	b.mu.Lock()
	closers := b.mu.closers
	b.mu.closers = nil
	b.mu.Unlock()
	var errs []error
	for _, c := range closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// abandon closes the streams of a backend whose Open failed (their errors are only logged: the
// Open's error says what went wrong).
func (b *backend) abandon() {
	if err := b.closeCopies(); err != nil {
		b.v.opts.Log.Info("closing the replica streams of a failed open", "volume", b.ref.key, "error", err.Error())
	}
}

// start runs the sync loop, and the scrub loop when scrubs are scheduled, of the opened
// coordinator b.co.
func (b *backend) start() {
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	b.loops.Add(1)
	go b.run(ctx)
	if b.v.opts.ScrubInterval > 0 {
		b.loops.Add(1)
		go b.runScrub(ctx)
	}
}

// ioErr marks a fenced coordinator's errors with csinode.ErrFenced.
func ioErr(err error) error {
	if err != nil && errors.Is(err, replica.ErrFenced) && !errors.Is(err, csinode.ErrFenced) {
		return fmt.Errorf("%w: %w", csinode.ErrFenced, err)
	}
	return err
}

// ioErr marks a fenced coordinator's errors with csinode.ErrFenced and says so once, in
// EventFenced.
func (b *backend) ioErr(err error) error { return b.noteFenced(ioErr(err)) }

// ReadAt implements frontend.Backend.
func (b *backend) ReadAt(ctx context.Context, p []byte, off int64) error {
	data, err := b.co.Read(ctx, off, int64(len(p)))
	if err != nil {
		return b.ioErr(err)
	}
	copy(p, data)
	return nil
}

// WriteAt implements frontend.Backend.
func (b *backend) WriteAt(ctx context.Context, p []byte, off int64) error {
	return b.ioErr(b.co.Write(ctx, off, p))
}

// Flush implements frontend.Backend.
func (b *backend) Flush(ctx context.Context) error { return b.ioErr(b.co.Flush(ctx)) }

// Trim implements frontend.Backend.
func (b *backend) Trim(ctx context.Context, off, length int64) error {
	return b.ioErr(b.co.Trim(ctx, off, length))
}

// Size implements csinode.ReplicatedBackend: the smallest allocation among the copies.
func (b *backend) Size(ctx context.Context) (int64, error) {
	vol, err := b.ref.read(ctx)
	if err != nil {
		return 0, err
	}
	return smallestAllocation(vol)
}

// Close implements csinode.ReplicatedBackend: it stops the sync and scrub loops (and any sync or
// scrub they run), flushes, clears the write intent of the in-sync copies (replica.Coordinator.
// Close; a clear that fails is only logged: the next Open compares more) and closes the streams
// to the other copies. Later calls return the first's result.
func (b *backend) Close(ctx context.Context) error {
	b.closed.Do(func() {
		b.cancel()
		b.loops.Wait()
		ferr := b.co.Close(ctx)
		if errors.Is(ferr, replica.ErrIntentNotCleared) {
			b.v.opts.Log.Info("write intent not cleared at close: the next open compares its regions", "volume", b.ref.key, "error", ferr.Error())
			ferr = nil
		}
		if ferr != nil {
			ferr = fmt.Errorf("replvol: close %s: flush: %w", b.ref.key, b.ioErr(ferr))
		}
		// A stream to a copy that failed ends with its error: that copy is already out of sync
		// (or the flush above failed), so closing reports it and does not fail.
		if cerr := b.closeCopies(); cerr != nil {
			b.v.opts.Log.Info("closing replica streams", "volume", b.ref.key, "error", cerr.Error())
		}
		b.closeErr = ferr
		b.v.forget(b)
	})
	return b.closeErr
}
