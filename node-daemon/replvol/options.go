package replvol

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
	"github.com/cobaltstore/cobalt/node-daemon/replica"
)

// Defaults of Options.
const (
	// DefaultSyncInterval is how often the sync loop re-reads a Volume when SyncInterval is 0.
	DefaultSyncInterval = 10 * time.Second
	// DefaultScrubInterval is the scrub interval for production, which the node daemon passes
	// as Options.ScrubInterval: each open volume's copies are compared (and their checksums
	// deep read) once a day.
	DefaultScrubInterval = 24 * time.Hour
	// progressInterval is the least time between two progress messages of one copy.
	progressInterval = 3 * time.Second
	// maxSyncFailures bounds the distinct sync failures of a copy remembered for its events.
	maxSyncFailures = 8
	// statusRetries bounds the optimistic-lock retries of one status write.
	statusRetries = 8
)

// Dialer opens a stream client to the node daemon serving endpoint (a Store's
// AnnotationNodeEndpoint, host:port). The node daemon builds it on node-daemon/client.Dial with
// the peer mTLS configuration; the io.Closer closes the connection.
type Dialer interface {
	Dial(ctx context.Context, endpoint string) (nodepb.ReplicaServiceClient, io.Closer, error)
}

// Options configures Volumes.
type Options struct {
	// Client writes the Volumes' status (status subresource). Required.
	Client client.Client
	// APIReader reads Volumes and Stores without a cache, so every decision and every
	// optimistic-lock update starts from the API server's current object. Required.
	APIReader client.Reader
	// NodeName is this node's name, compared with a Volume's status.attachment.node. Required.
	NodeName string
	// Node is this node's fenced replica I/O (server.Server.Replicas()), for local copies.
	// Required.
	Node *replica.Node
	// Local reports whether the Store of that UUID is on this node and open, so its copy is read
	// and written in-process. Required.
	Local func(storeUUID string) bool
	// Dialer reaches the node daemons of the other copies. Required.
	Dialer Dialer
	// SyncInterval is how often each open volume's sync loop runs (0: DefaultSyncInterval).
	SyncInterval time.Duration
	// ScrubInterval is how often each open volume's copies are scrubbed: compared by checksums
	// computed on their nodes (a deep read: each engine verifies its own checksums), the blocks
	// that differ or that a copy cannot read repaired from a good copy, and the outcome recorded
	// in the Volume's status (condition Scrubbed). The first scrub runs one interval after Open
	// (plus up to a tenth of it, at random), the next one an interval after it ended. 0 scrubs
	// never; production passes DefaultScrubInterval.
	ScrubInterval time.Duration
	// Limiter throttles rebuilds, resyncs and scrubs (bytes); nil does not throttle.
	Limiter replica.Limiter
	// ReplicaTimeout bounds one operation on one copy and one status write
	// (0: replica.DefaultReplicaTimeout).
	ReplicaTimeout time.Duration
	// Events receives the Events this node writes on the Volumes it serves (copies dropped,
	// rebuilt, resynced, syncs failed, fencing, scrubs that found differences); nil writes none.
	Events EventRecorder
	// Log receives the loop's events.
	Log logr.Logger
}

// withDefaults validates o and fills in its defaults.
func (o Options) withDefaults() (Options, error) {
	var errs []error
	if o.Client == nil {
		errs = append(errs, errors.New("options.Client is required (it writes the Volumes' status)"))
	}
	if o.APIReader == nil {
		errs = append(errs, errors.New("options.APIReader is required (it reads Volumes and Stores uncached)"))
	}
	if o.NodeName == "" {
		errs = append(errs, errors.New("options.NodeName is required (the node's name, as in a Volume's attachment)"))
	}
	if o.Node == nil {
		errs = append(errs, errors.New("options.Node is required (the node's replica I/O, server.Server.Replicas())"))
	}
	if o.Local == nil {
		errs = append(errs, errors.New("options.Local is required (whether a Store UUID is open on this node)"))
	}
	if o.Dialer == nil {
		errs = append(errs, errors.New("options.Dialer is required (it reaches the other copies' node daemons)"))
	}
	if o.SyncInterval < 0 || o.ReplicaTimeout < 0 || o.ScrubInterval < 0 {
		errs = append(errs, errors.New("options.SyncInterval, options.ScrubInterval and options.ReplicaTimeout must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return o, err
	}
	if o.SyncInterval == 0 {
		o.SyncInterval = DefaultSyncInterval
	}
	if o.ReplicaTimeout == 0 {
		o.ReplicaTimeout = replica.DefaultReplicaTimeout
	}
	return o, nil
}
