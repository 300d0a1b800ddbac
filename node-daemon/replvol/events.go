package replvol

import (
	"errors"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/node-daemon/csinode"
	"github.com/cobaltstore/cobalt/node-daemon/replica"
)

// Reasons of the Events this node writes on a replicated Volume it serves (Options.Events). The
// operator writes its own (ReplicaLost, ReplicaReplaced, ReplicaInSync, ...) from what it
// observes; these say what the node did, when it did it.
const (
	// EventReplicaDropped (Warning): a copy failed an operation and was dropped from the in-sync
	// set; the drop is in status before the operation was acknowledged without it.
	EventReplicaDropped = "ReplicaDropped"
	// EventReplicaRebuilt and EventReplicaResynced (Normal): a copy was copied (every written
	// extent, or only its dirty regions), compared equal and is in sync again.
	EventReplicaRebuilt  = "ReplicaRebuilt"
	EventReplicaResynced = "ReplicaResynced"
	// EventReplicaSyncFailed (Warning): a rebuild or resync failed; it is retried every
	// SyncInterval, and said again only when it fails otherwise or after a sync that ended well.
	EventReplicaSyncFailed = "ReplicaSyncFailed"
	// EventFenced (Warning): the volume was attached at a newer generation (or to another node)
	// while this node served it; this node's coordinator stops, once, and every later I/O of it
	// is refused.
	EventFenced = "Fenced"
	// Scrub events (Warning) for every scrub (scheduled or at Open) that did not find the copies
	// equal: ScrubRepaired (repaired, equal after), ScrubMismatchNotRepaired, ScrubRepairFailed,
	// ScrubFailed, with the message of condition ConditionScrubbed.
	eventScrubPrefix = "Scrub"
)

// Actions of the Events.
const (
	actionReplicate = "Replicate"
	actionSync      = "Sync"
	actionScrub     = "Scrub"
)

// EventRecorder writes Events (k8s.io/client-go/tools/events.EventRecorder satisfies it).
type EventRecorder interface {
	Eventf(regarding runtime.Object, related runtime.Object, eventtype, reason, action, note string, args ...any)
}

// event writes one Event on the backend's Volume, related to the Store of copy store when it is
// not empty. Without Options.Events it does nothing.
func (b *backend) event(store, eventtype, reason, action, note string, args ...any) {
	rec := b.v.opts.Events
	if rec == nil {
		return
	}
	vol := &v1alpha1.Volume{ObjectMeta: metav1.ObjectMeta{Namespace: b.ref.key.Namespace, Name: b.ref.key.Name, UID: types.UID(b.ref.uid)}}
	var related runtime.Object // an untyped nil when there is no copy
	if store != "" {
		related = &v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: store}}
	}
	rec.Eventf(vol, related, eventtype, reason, action, note, args...)
}

// noteFenced writes EventFenced, once per backend, when err says the coordinator was fenced
// (a copy refused its generation, or the Volume's attachment moved on), and returns err.
func (b *backend) noteFenced(err error) error {
	if err == nil || !errors.Is(err, replica.ErrFenced) && !errors.Is(err, csinode.ErrFenced) {
		return err
	}
	b.fenced.Do(func() {
		b.v.opts.Log.Info("coordinator fenced: this node no longer serves the volume", "volume", b.ref.key, "generation", b.ref.gen, "error", err.Error())
		b.event("", corev1.EventTypeWarning, EventFenced, actionReplicate,
			"node %s stopped serving the volume at generation %d: %v; its I/O is refused from now on, the Pod must run where the volume is attached now",
			b.v.opts.NodeName, b.ref.gen, err)
	})
	return err
}

// scrubEventReason is the Event reason of a scrub that ended with condition reason.
func scrubEventReason(reason string) string {
	if reason == ReasonScrubFailed {
		return reason
	}
	return eventScrubPrefix + reason
}
