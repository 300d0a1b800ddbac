package replvol

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/types"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
	"github.com/cobaltstore/cobalt/node-daemon/replica"
)

// opened is a copy reached from this node: in-process (local) or over a stream to its node.
type opened struct {
	s     replica.Syncer
	local *replica.Local // set for a copy on this node
	// close closes the stream and its connection; nil for a local copy.
	close func() error
}

// storeOf reads the Store named store and returns its UUID and its node daemon's endpoint.
func (v *Volumes) storeOf(ctx context.Context, store string) (uuid, endpoint string, err error) {
	var st v1alpha1.Store
	if err := v.opts.APIReader.Get(ctx, types.NamespacedName{Name: store}, &st); err != nil {
		return "", "", fmt.Errorf("read Store %s: %w", store, err)
	}
	if st.Status.UUID == "" {
		return "", "", fmt.Errorf("the Store %s has no uuid in its status yet", store)
	}
	return st.Status.UUID, st.Annotations[v1alpha1.AnnotationNodeEndpoint], nil
}

// openCopy reaches the copy of volume volID on store: in-process when the Store is open on this
// node, otherwise over a replica stream to the endpoint its node daemon publishes. The stream
// lives until the returned close, not until ctx ends.
func (v *Volumes) openCopy(ctx context.Context, store, volID string) (*opened, error) {
	uuid, endpoint, err := v.storeOf(ctx, store)
	if err != nil {
		return nil, err
	}
	if v.opts.Local(uuid) {
		l := replica.NewLocal(v.opts.Node, store, uuid, volID)
		return &opened{s: l, local: l}, nil
	}
	if endpoint == "" {
		return nil, fmt.Errorf("the Store %s publishes no node endpoint (annotation %s): its node daemon cannot be reached", store, v1alpha1.AnnotationNodeEndpoint)
	}
	cl, conn, err := v.opts.Dialer.Dial(ctx, endpoint)
	if err != nil {
		return nil, fmt.Errorf("dial the node daemon of Store %s at %s: %w", store, endpoint, err)
	}
	rem, err := replica.OpenRemote(context.WithoutCancel(ctx), cl, store, &nodepb.VolumeRef{StoreUuid: uuid, VolumeId: volID})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open the replica stream to Store %s at %s: %w", store, endpoint, err), conn.Close())
	}
	return &opened{s: rem, close: func() error { return errors.Join(rem.Close(), conn.Close()) }}, nil
}

// unreachable stands for an in-sync copy that could not be reached at Open: it fails every
// operation, so the coordinator's claim drops it through the InSyncRecorder (the status then
// says so) and its dirty log tracks every write it misses from then on.
type unreachable struct {
	name string
	err  error
}

var _ replica.Syncer = unreachable{}

func (u unreachable) fail() error { return fmt.Errorf("replica %s unreachable: %w", u.name, u.err) }

func (u unreachable) Name() string { return u.name }

func (u unreachable) Write(context.Context, uint64, int64, []byte) error { return u.fail() }

func (u unreachable) Trim(context.Context, uint64, int64, int64) error { return u.fail() }

func (u unreachable) Flush(context.Context, uint64) error { return u.fail() }

func (u unreachable) Read(context.Context, uint64, int64, int64) ([]byte, error) {
	return nil, u.fail()
}

func (u unreachable) Extents(context.Context, uint64) ([]replica.Extent, int64, error) {
	return nil, 0, u.fail()
}

func (u unreachable) Checksum(context.Context, uint64, int64, int64, int64) ([]uint32, error) {
	return nil, u.fail()
}

// watched remembers whether a member ever failed a flush, so that Open tells a claim no in-sync
// copy answered (ErrNoInSyncCopy) from other failures.
type watched struct {
	replica.Syncer
	failed atomic.Bool
}

var (
	_ replica.NoCacheReader     = (*watched)(nil)
	_ replica.NoCacheReaderInto = (*watched)(nil)
	_ replica.Incarnated        = (*watched)(nil)
)

// Incarnation implements replica.Incarnated: the incarnation the copy reached, if it says.
func (w *watched) Incarnation() string {
	if i, ok := w.Syncer.(replica.Incarnated); ok {
		return i.Incarnation()
	}
	return ""
}

// ReadNoCache implements replica.NoCacheReader when the copy does (a copy reads its source past
// the node's cache), else reads through it.
func (w *watched) ReadNoCache(ctx context.Context, gen uint64, off, length int64) ([]byte, error) {
	return replica.ReadForCopy(ctx, w.Syncer, gen, off, length)
}

// ReadNoCacheInto implements replica.NoCacheReaderInto: into p directly when the copy reads
// into the caller's buffer (a copy's source reads into a reused buffer), else through
// ReadNoCache.
func (w *watched) ReadNoCacheInto(ctx context.Context, gen uint64, off int64, p []byte) error {
	if into, ok := w.Syncer.(replica.NoCacheReaderInto); ok {
		return into.ReadNoCacheInto(ctx, gen, off, p)
	}
	data, err := w.ReadNoCache(ctx, gen, off, int64(len(p)))
	if err != nil {
		return err
	}
	if len(data) != len(p) {
		return fmt.Errorf("read %d bytes at %d: got %d", len(p), off, len(data))
	}
	copy(p, data)
	return nil
}

// Flush implements replica.Replica.
func (w *watched) Flush(ctx context.Context, gen uint64) error {
	err := w.Syncer.Flush(ctx, gen)
	if err != nil {
		w.failed.Store(true)
	}
	return err
}

// Intent implements replica.IntentKeeper: a copy that keeps no write-intent log says so.
func (w *watched) Intent(ctx context.Context, gen uint64) (replica.Intent, error) {
	k, ok := w.Syncer.(replica.IntentKeeper)
	if !ok {
		return replica.Intent{Why: fmt.Sprintf("copy %s keeps no write-intent log", w.Name())}, nil
	}
	return k.Intent(ctx, gen)
}

// ClearIntent implements replica.IntentKeeper; a copy that keeps no log has nothing to clear.
func (w *watched) ClearIntent(ctx context.Context, gen uint64, extents []replica.Extent, all bool) error {
	k, ok := w.Syncer.(replica.IntentKeeper)
	if !ok {
		return nil
	}
	return k.ClearIntent(ctx, gen, extents, all)
}
