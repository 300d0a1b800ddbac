package volume

import (
	"context"
	"fmt"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
)

// userAttrPrefix keeps the attributes that other layers store on a volume apart from the volume's
// own (format, size, stripe size), so they can never overwrite them.
const userAttrPrefix = "user."

// SetUserAttr durably sets attribute name of volume id (stored on its meta object) to value, as
// one store transaction.
func (m *Manager) SetUserAttr(ctx context.Context, id, name string, value []byte) error {
	v, err := m.lookup(id)
	if err != nil {
		return err
	}
	if name == "" {
		return fmt.Errorf("volume %q: empty attribute name: %w", id, objstore.ErrInvalid)
	}
	v.gate.RLock()
	defer v.gate.RUnlock()
	if err := m.store.Commit(ctx, []objstore.Op{objstore.SetAttr(v.coll, metaObject, userAttrPrefix+name, value)}); err != nil {
		return fmt.Errorf("volume: set attribute %s of %q: %w", name, id, err)
	}
	return nil
}

// UserAttr returns attribute name of volume id, or an error wrapping objstore.ErrNotFound when the
// volume or the attribute is missing.
func (m *Manager) UserAttr(ctx context.Context, id, name string) ([]byte, error) {
	v, err := m.lookup(id)
	if err != nil {
		return nil, err
	}
	v.gate.RLock()
	defer v.gate.RUnlock()
	val, err := m.store.GetAttr(ctx, v.coll, metaObject, userAttrPrefix+name)
	if err != nil {
		return nil, fmt.Errorf("volume: attribute %s of %q: %w", name, id, err)
	}
	return val, nil
}
