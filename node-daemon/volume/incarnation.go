package volume

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
)

// attrIncarnation on a volume's meta object names this incarnation of the volume: 32 hex digits
// drawn at random when the volume is created (or, for a volume made by older code, the first time
// it is asked for). A volume deleted and created again under the same ID gets a new one, so a
// client that reached the old volume can tell that the one it reaches now is not the same
// (package replica refuses I/O meant for another incarnation of a copy).
const attrIncarnation = "incarnation"

// newIncarnation draws an incarnation.
func newIncarnation() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("volume: draw an incarnation: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// incarnationOp records inc as the incarnation of the volume in collection c.
func incarnationOp(c, inc string) objstore.Op {
	return objstore.SetAttr(c, metaObject, attrIncarnation, []byte(inc))
}

// Incarnation returns the incarnation of volume id (see attrIncarnation), never "": a volume that
// has none yet (made by older code) gets one now, durably.
func (m *Manager) Incarnation(ctx context.Context, id string) (string, error) {
	v, err := m.lookup(id)
	if err != nil {
		return "", err
	}
	if inc := v.incarnation.Load(); inc != nil {
		return *inc, nil
	}
	m.ctl.Lock()
	defer m.ctl.Unlock()
	if inc := v.incarnation.Load(); inc != nil {
		return *inc, nil
	}
	if _, err := m.lookup(id); err != nil {
		return "", err // deleted meanwhile
	}
	inc, err := newIncarnation()
	if err != nil {
		return "", err
	}
	if err := m.store.Commit(ctx, []objstore.Op{incarnationOp(v.coll, inc)}); err != nil {
		return "", fmt.Errorf("volume: record the incarnation of %q: %w", id, err)
	}
	v.incarnation.Store(&inc)
	return inc, nil
}
