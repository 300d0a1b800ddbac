package memstore

import (
	"fmt"
	"maps"
	"slices"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
)

// object is one object: its data, extended attributes, omap and omap header.
type object struct {
	data   data
	attrs  map[string][]byte
	omap   map[string][]byte
	header []byte
}

// clone copies the object; values are never changed in place, so they are shared.
func (o *object) clone() *object {
	return &object{data: o.data.clone(), attrs: maps.Clone(o.attrs), omap: maps.Clone(o.omap), header: o.header}
}

func newObject() *object {
	return &object{attrs: map[string][]byte{}, omap: map[string][]byte{}}
}

// staging is a transaction being applied: it implements objstore.Applier on copies of the
// collections and objects it changes, which replace the store's only when every op succeeded.
type staging struct {
	colls    map[string]map[string]*object
	copied   map[string]bool    // collections whose object map was copied
	cloned   map[[2]string]bool // objects already copied
	used     int64
	capacity int64
}

var _ objstore.Applier = (*staging)(nil)

func (st *staging) coll(c string) (map[string]*object, error) {
	m, ok := st.colls[c]
	if !ok {
		return nil, fmt.Errorf("collection %q: %w", c, objstore.ErrNotFound)
	}
	if !st.copied[c] {
		m = maps.Clone(m)
		st.colls[c] = m
		st.copied[c] = true
	}
	return m, nil
}

// obj returns a private copy of object o, creating it if create is set.
func (st *staging) obj(c, o string, create bool) (*object, error) {
	m, err := st.coll(c)
	if err != nil {
		return nil, err
	}
	key := [2]string{c, o}
	ob, ok := m[o]
	switch {
	case !ok && !create:
		return nil, fmt.Errorf("object %s/%s: %w", c, o, objstore.ErrNotFound)
	case !ok:
		ob = newObject()
	case !st.cloned[key]:
		ob = ob.clone()
	}
	m[o] = ob
	st.cloned[key] = true
	return ob, nil
}

// grow accounts for delta bytes of space; it refuses to go over the capacity.
func (st *staging) grow(delta int64) error {
	st.used += delta
	if delta > 0 && st.used > st.capacity {
		return fmt.Errorf("%d bytes needed, capacity %d: %w", st.used, st.capacity, objstore.ErrNoSpace)
	}
	return nil
}

func (st *staging) CreateCollection(c string) error {
	if _, ok := st.colls[c]; ok {
		return fmt.Errorf("collection %q: %w", c, objstore.ErrExists)
	}
	st.colls[c] = map[string]*object{}
	st.copied[c] = true
	return nil
}

func (st *staging) RemoveCollection(c string) error {
	m, err := st.coll(c)
	if err != nil {
		return err
	}
	if len(m) > 0 {
		return fmt.Errorf("collection %q: %w", c, objstore.ErrNotEmpty)
	}
	delete(st.colls, c)
	delete(st.copied, c)
	return nil
}

func (st *staging) Touch(c, o string) error {
	_, err := st.obj(c, o, true)
	return err
}

func (st *staging) Write(c, o string, off int64, p []byte) error {
	ob, err := st.obj(c, o, true)
	if err != nil {
		return err
	}
	return st.grow(ob.data.write(off, p))
}

func (st *staging) Zero(c, o string, off, length int64) error {
	ob, err := st.obj(c, o, true)
	if err != nil {
		return err
	}
	if length == 0 {
		return nil
	}
	st.used += ob.data.zero(off, length)
	ob.data.size = max(ob.data.size, off+length)
	return nil
}

func (st *staging) Truncate(c, o string, size int64) error {
	ob, err := st.obj(c, o, false)
	if err != nil {
		return err
	}
	st.used += ob.data.truncate(size)
	return nil
}

func (st *staging) Remove(c, o string) error {
	m, err := st.coll(c)
	if err != nil {
		return err
	}
	ob, ok := m[o]
	if !ok {
		return fmt.Errorf("object %s/%s: %w", c, o, objstore.ErrNotFound)
	}
	st.used -= ob.data.used()
	delete(m, o)
	delete(st.cloned, [2]string{c, o})
	return nil
}

func (st *staging) SetAttr(c, o, name string, value []byte) error {
	ob, err := st.obj(c, o, false)
	if err != nil {
		return err
	}
	ob.attrs[name] = slices.Clone(value)
	return nil
}

func (st *staging) RmAttr(c, o, name string) error {
	ob, err := st.obj(c, o, false)
	if err != nil {
		return err
	}
	delete(ob.attrs, name)
	return nil
}

func (st *staging) OmapSetKeys(c, o string, entries map[string][]byte) error {
	ob, err := st.obj(c, o, false)
	if err != nil {
		return err
	}
	for k, v := range entries {
		ob.omap[k] = slices.Clone(v)
	}
	return nil
}

func (st *staging) OmapRmKeys(c, o string, keys []string) error {
	ob, err := st.obj(c, o, false)
	if err != nil {
		return err
	}
	for _, k := range keys {
		delete(ob.omap, k)
	}
	return nil
}

func (st *staging) OmapClear(c, o string) error {
	ob, err := st.obj(c, o, false)
	if err != nil {
		return err
	}
	ob.omap = map[string][]byte{}
	ob.header = nil
	return nil
}

func (st *staging) OmapSetHeader(c, o string, header []byte) error {
	ob, err := st.obj(c, o, false)
	if err != nil {
		return err
	}
	ob.header = slices.Clone(header)
	return nil
}

func (st *staging) Clone(c, src, dst string) error {
	ob, err := st.obj(c, src, false)
	if err != nil || src == dst {
		return err
	}
	m := st.colls[c]
	if old, ok := m[dst]; ok {
		st.used -= old.data.used()
	}
	m[dst] = ob.clone()
	st.cloned[[2]string{c, dst}] = true
	return st.grow(ob.data.used())
}

func (st *staging) CloneTo(c, src, dc, dst string) error {
	if c == dc {
		return st.Clone(c, src, dst)
	}
	ob, err := st.obj(c, src, false)
	if err != nil {
		return err
	}
	m, err := st.coll(dc)
	if err != nil {
		return err
	}
	if old, ok := m[dst]; ok {
		st.used -= old.data.used()
	}
	m[dst] = ob.clone()
	st.cloned[[2]string{dc, dst}] = true
	return st.grow(ob.data.used())
}

func (st *staging) Rename(c, src, dst string) error {
	ob, err := st.obj(c, src, false)
	if err != nil || src == dst {
		return err
	}
	m := st.colls[c]
	if _, ok := m[dst]; ok {
		return fmt.Errorf("object %s/%s: %w", c, dst, objstore.ErrExists)
	}
	delete(m, src)
	delete(st.cloned, [2]string{c, src})
	m[dst] = ob
	st.cloned[[2]string{c, dst}] = true
	return nil
}
