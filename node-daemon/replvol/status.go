package replvol

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/node-daemon/csinode"
)

// volumeRef is the Volume a coordinator serves: its object, its UID and the attachment
// generation it runs at, with what reads and writes its status.
type volumeRef struct {
	opts Options
	key  types.NamespacedName
	uid  string
	gen  uint64
}

// parseVolume splits "<namespace>/<name>".
func parseVolume(s string) (types.NamespacedName, error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return types.NamespacedName{}, fmt.Errorf("replvol: volume %q is not <namespace>/<name>", s)
	}
	return types.NamespacedName{Namespace: ns, Name: name}, nil
}

// read reads the Volume uncached and checks that it is still the one opened (ErrVolumeNotFound
// otherwise) and not attached elsewhere or at a newer generation (ErrFenced).
func (r *volumeRef) read(ctx context.Context) (*v1alpha1.Volume, error) {
	var vol v1alpha1.Volume
	if err := r.opts.APIReader.Get(ctx, r.key, &vol); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("replvol: Volume %s: %w", r.key, csinode.ErrVolumeNotFound)
		}
		return nil, fmt.Errorf("replvol: read Volume %s: %w", r.key, err)
	}
	if string(vol.UID) != r.uid {
		return nil, fmt.Errorf("replvol: Volume %s has UID %s, not %s (it was deleted and made again): %w", r.key, vol.UID, r.uid, csinode.ErrVolumeNotFound)
	}
	if err := fenced(vol.Status.Attachment, r.opts.NodeName, r.gen); err != nil {
		return nil, fmt.Errorf("replvol: Volume %s: %w", r.key, err)
	}
	return &vol, nil
}

// fenced says why a coordinator of node at gen may no longer serve a Volume attached as att.
func fenced(att *v1alpha1.VolumeAttachmentStatus, node string, gen uint64) error {
	switch {
	case att == nil:
		return nil
	case att.Generation > 0 && uint64(att.Generation) > gen:
		return fmt.Errorf("attached to node %q at generation %d, newer than this node's %d: %w", att.Node, att.Generation, gen, csinode.ErrFenced)
	case att.Node != "" && att.Node != node:
		return fmt.Errorf("attached to node %q, not to %q: %w", att.Node, node, csinode.ErrFenced)
	}
	return nil
}

// update applies mutate to a fresh copy of the Volume's status and writes it with an
// optimistic-lock update (the read's resourceVersion), reading again and retrying on Conflict. It
// writes nothing when mutate reports no change. Every attempt checks the fencing first.
func (r *volumeRef) update(ctx context.Context, mutate func(*v1alpha1.VolumeStatus) bool) error {
	ctx, cancel := context.WithTimeout(ctx, r.opts.ReplicaTimeout)
	defer cancel()
	var last error
	for range statusRetries {
		vol, err := r.read(ctx)
		if err != nil {
			return err
		}
		if !mutate(&vol.Status) {
			return nil
		}
		vol.Status.InSyncReplicas = countInSync(vol.Status.Replicas)
		err = r.opts.Client.Status().Update(ctx, vol)
		if err == nil {
			return nil
		}
		if !apierrors.IsConflict(err) {
			return fmt.Errorf("replvol: update status of Volume %s: %w", r.key, err)
		}
		last = err
	}
	return fmt.Errorf("replvol: update status of Volume %s: still conflicting after %d attempts: %w", r.key, statusRetries, last)
}

func countInSync(reps []v1alpha1.VolumeReplica) int32 {
	var n int32
	for _, c := range reps {
		if c.State == v1alpha1.ReplicaInSync {
			n++
		}
	}
	return n
}

// copyOf returns the status entry of the copy on store, or nil.
func copyOf(st *v1alpha1.VolumeStatus, store string) *v1alpha1.VolumeReplica {
	for i := range st.Replicas {
		if st.Replicas[i].Store == store {
			return &st.Replicas[i]
		}
	}
	return nil
}

// setState makes the copy on store InSync (clearing its message) or CatchingUp with msg. It
// returns whether it changed anything; a copy not listed any more, or (for CatchingUp) not InSync,
// is left alone: its status already says it is not in sync.
func setState(st *v1alpha1.VolumeStatus, store string, state v1alpha1.ReplicaState, msg string) bool {
	c := copyOf(st, store)
	if c == nil {
		return false
	}
	switch state {
	case v1alpha1.ReplicaInSync:
		if c.State == v1alpha1.ReplicaInSync && c.Message == "" {
			return false
		}
		c.State, c.Message = v1alpha1.ReplicaInSync, ""
	case v1alpha1.ReplicaCatchingUp:
		if c.State != v1alpha1.ReplicaInSync {
			return false
		}
		c.State, c.Message = v1alpha1.ReplicaCatchingUp, msg
	default:
		return false
	}
	return true
}

// setMessage sets the message of a copy that is CatchingUp (progress or the last error).
func setMessage(st *v1alpha1.VolumeStatus, store, msg string) bool {
	c := copyOf(st, store)
	if c == nil || c.State != v1alpha1.ReplicaCatchingUp || c.Message == msg {
		return false
	}
	c.Message = msg
	return true
}

// specStores returns the Stores the spec places copies on.
func specStores(vol *v1alpha1.Volume) map[string]bool {
	out := map[string]bool{}
	if vol.Spec.StoreName != "" {
		out[vol.Spec.StoreName] = true
	}
	for _, s := range vol.Spec.ReplicaStoreNames {
		out[s] = true
	}
	return out
}
