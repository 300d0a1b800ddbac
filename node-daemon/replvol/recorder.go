package replvol

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// maxMessage bounds a copy's status message.
const maxMessage = 1024

func clip(msg string) string {
	if len(msg) <= maxMessage {
		return msg
	}
	return msg[:maxMessage-3] + "..."
}

// DropReplica implements replica.InSyncRecorder: it writes the copy CatchingUp, with why and
// when, into the Volume's status (optimistic lock, retried on Conflict) and returns nil only once
// the API server has it, or once the status already shows the copy out of sync (Lost, CatchingUp,
// or no longer listed). It refuses when the Volume is gone or attached at a newer generation, so
// the write that needed the drop fails.
func (b *backend) DropReplica(ctx context.Context, name, reason string) error {
	b.statusMu.Lock()
	defer b.statusMu.Unlock()
	msg := clip(fmt.Sprintf("dropped from the in-sync set by node %s (generation %d) at %s: %s",
		b.v.opts.NodeName, b.ref.gen, time.Now().UTC().Format(time.RFC3339), reason))
	err := b.ref.update(ctx, func(st *v1alpha1.VolumeStatus) bool {
		return setState(st, name, v1alpha1.ReplicaCatchingUp, msg)
	})
	if err != nil {
		b.v.opts.Log.Error(err, "could not record a copy's drop: the operation that failed on it fails", "volume", b.ref.key, "store", name)
		_ = b.noteFenced(err)
		return fmt.Errorf("replvol: record the drop of copy %s of Volume %s: %w", name, b.ref.key, err)
	}
	b.mu.Lock()
	if cs := b.mu.copies[name]; cs != nil {
		cs.dropped = true
		cs.drops++
		cs.state = v1alpha1.ReplicaCatchingUp
	}
	b.mu.Unlock()
	b.v.opts.Log.Info("copy dropped from the in-sync set", "volume", b.ref.key, "store", name, "reason", reason)
	b.event(name, corev1.EventTypeWarning, EventReplicaDropped, actionReplicate, "%s", msg)
	return nil
}
