package replica

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
)

// Ref names a replica on a node: volume Volume of the store StoreUUID and, when Incarnation is
// set, the one incarnation of it (volume.Manager.Incarnation) the request is meant for. A volume
// deleted and created again under the same ID is another incarnation, and Node refuses a request
// meant for the old one (ErrReplaced): a coordinator that reached a copy keeps reaching that copy
// or nothing, never a new, empty one that took its place. An empty Incarnation accepts whichever
// the node holds.
type Ref struct {
	StoreUUID   string
	Volume      string
	Incarnation string
}

// ErrReplaced: the copy a request was meant for is gone; the volume the node holds under its ID
// now is another incarnation (deleted and created again), which holds none of its data.
var ErrReplaced = errors.New("replica: the copy was replaced by a new one")

// ReplacedError is a refusal of a request meant for another incarnation of a copy. It matches
// ErrReplaced.
type ReplacedError struct {
	// Expected is the incarnation the request was meant for, Found the one the node holds.
	Expected, Found string
}

func (e *ReplacedError) Error() string {
	return fmt.Sprintf("replica: the copy is another incarnation (%s) than the one this coordinator reached (%s): it was deleted and created again, and holds none of the old copy's data", e.Found, e.Expected)
}

// Is makes errors.Is(err, ErrReplaced) match.
func (e *ReplacedError) Is(target error) bool { return target == ErrReplaced }

// Incarnated is a replica that knows which incarnation of its copy it reached (Local and Remote
// bind to the first one they reach and refuse any other after): "" until it reached one, or when
// the node is too old to say.
type Incarnated interface {
	Incarnation() string
}

// incarnationOf returns r's incarnation, or "" when r does not know it.
func incarnationOf(r Replica) string {
	if i, ok := r.(Incarnated); ok {
		return i.Incarnation()
	}
	return ""
}

// binding is the incarnation a Local or Remote reached first; it is safe for concurrent use, and
// lock-free: every request reads it.
type binding struct {
	inc atomic.Pointer[string] // nil while unbound
}

// get returns the bound incarnation ("" while unbound).
func (b *binding) get() string {
	if p := b.inc.Load(); p != nil {
		return *p
	}
	return ""
}

// bind binds to inc when unbound and fails when bound to another; an empty inc changes nothing.
func (b *binding) bind(inc string) error {
	if inc == "" || b.inc.CompareAndSwap(nil, &inc) {
		return nil
	}
	if cur := *b.inc.Load(); cur != inc {
		return &ReplacedError{Expected: cur, Found: inc}
	}
	return nil
}

// Incarnation returns the incarnation of the volume of ref, never "" (see volume.Manager.Incarnation).
func (n *Node) Incarnation(ctx context.Context, ref Ref) (string, error) {
	m, err := n.vols.VolumeManager(ref.StoreUUID)
	if err != nil {
		return "", fmt.Errorf("replica: volume %q: %w", ref.Volume, err)
	}
	inc, err := m.Incarnation(ctx, ref.Volume)
	if err != nil {
		return "", fmt.Errorf("replica: %w", err)
	}
	return inc, nil
}

// Delete deletes the volume of ref (volume.Manager.Delete) once every request admitted for it has
// finished, and forgets what this node kept of it (its recorded generation and write-intent log),
// so a volume created later under the same ID starts afresh. The node API's DeleteVolume goes
// through it.
func (n *Node) Delete(ctx context.Context, storeUUID, id string) error {
	m, err := n.vols.VolumeManager(storeUUID)
	if err != nil {
		return fmt.Errorf("replica: volume %q: %w", id, err)
	}
	f := n.fence(storeUUID, id)
	f.rw.Lock()
	defer f.rw.Unlock()
	if err := m.Delete(ctx, id); err != nil {
		return err
	}
	f.forget()
	return nil
}
