// Package memstore is an in-memory objstore.Store for tests of the node daemon's volume layer and
// gRPC server. It follows the storage engine's op semantics (see objstore.Op) and can be given a
// capacity so that tests see ErrNoSpace.
//
// Invariants: a Commit that returns an error leaves the store unchanged (ops are applied to copies
// of the touched collections and objects, which replace the originals only when every op
// succeeded); Used is the sum of the objects' sizes, so Used never exceeds the capacity.
package memstore

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
)

type object struct {
	data   []byte
	attrs  map[string][]byte
	omap   map[string][]byte
	header []byte
}

func (o *object) clone() *object {
	return &object{
		data:   slices.Clone(o.data),
		attrs:  maps.Clone(o.attrs),
		omap:   maps.Clone(o.omap),
		header: slices.Clone(o.header),
	}
}

// Store is an in-memory store. The zero value is not usable: call New.
type Store struct {
	uuid     string
	capacity int64
	// mu guards the fields in this struct.
	mu struct {
		sync.RWMutex
		colls map[string]map[string]*object
		used  int64
	}
}

var _ objstore.Store = (*Store)(nil)

// New returns an empty store with the given UUID and capacity in bytes.
func New(uuid string, capacity int64) *Store {
	s := &Store{uuid: uuid, capacity: capacity}
	s.mu.colls = make(map[string]map[string]*object)
	return s
}

// UUID implements objstore.Store.
func (s *Store) UUID() string { return s.uuid }

// staging holds the copies a transaction modifies.
type staging struct {
	colls  map[string]map[string]*object
	copied map[string]bool    // collections whose object map was copied
	cloned map[[2]string]bool // objects already copied
	used   int64
}

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
	ob, ok := m[o]
	if !ok {
		if !create {
			return nil, fmt.Errorf("object %s/%s: %w", c, o, objstore.ErrNotFound)
		}
		ob = &object{attrs: map[string][]byte{}, omap: map[string][]byte{}}
		m[o] = ob
		st.cloned[[2]string{c, o}] = true
		return ob, nil
	}
	if !st.cloned[[2]string{c, o}] {
		ob = ob.clone()
		m[o] = ob
		st.cloned[[2]string{c, o}] = true
	}
	return ob, nil
}

func (st *staging) resize(ob *object, size int64) {
	st.used += size - int64(len(ob.data))
	if size <= int64(len(ob.data)) {
		ob.data = ob.data[:size]
		return
	}
	ob.data = append(ob.data, make([]byte, size-int64(len(ob.data)))...)
}

// Commit implements objstore.Store.
func (s *Store) Commit(ctx context.Context, ops []objstore.Op) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &staging{
		colls: maps.Clone(s.mu.colls), copied: map[string]bool{}, cloned: map[[2]string]bool{},
		used: s.mu.used,
	}
	for i, op := range ops {
		if err := st.apply(op); err != nil {
			return fmt.Errorf("memstore: op %d: %w", i, err)
		}
	}
	if s.capacity > 0 && st.used > s.capacity {
		return fmt.Errorf("memstore: %d bytes needed, capacity %d: %w", st.used, s.capacity, objstore.ErrNoSpace)
	}
	s.mu.colls = st.colls
	s.mu.used = st.used
	return nil
}

func (st *staging) apply(op objstore.Op) error {
	if op.Offset < 0 || op.Length < 0 {
		return fmt.Errorf("negative offset or length: %w", objstore.ErrInvalid)
	}
	switch op.Kind {
	case objstore.OpCreateCollection:
		if op.Collection == "" {
			return fmt.Errorf("empty collection name: %w", objstore.ErrInvalid)
		}
		if _, ok := st.colls[op.Collection]; ok {
			return fmt.Errorf("collection %q: %w", op.Collection, objstore.ErrExists)
		}
		st.colls[op.Collection] = map[string]*object{}
		st.copied[op.Collection] = true
	case objstore.OpRemoveCollection:
		m, err := st.coll(op.Collection)
		if err != nil {
			return err
		}
		if len(m) > 0 {
			return fmt.Errorf("collection %q: %w", op.Collection, objstore.ErrNotEmpty)
		}
		delete(st.colls, op.Collection)
	case objstore.OpTouch:
		_, err := st.obj(op.Collection, op.Object, true)
		return err
	case objstore.OpWrite:
		ob, err := st.obj(op.Collection, op.Object, true)
		if err != nil {
			return err
		}
		if end := op.Offset + int64(len(op.Data)); end > int64(len(ob.data)) {
			st.resize(ob, end)
		}
		copy(ob.data[op.Offset:], op.Data)
	case objstore.OpZero:
		ob, err := st.obj(op.Collection, op.Object, true)
		if err != nil {
			return err
		}
		if end := op.Offset + op.Length; end > int64(len(ob.data)) {
			st.resize(ob, end)
		}
		clear(ob.data[op.Offset : op.Offset+op.Length])
	case objstore.OpTruncate:
		ob, err := st.obj(op.Collection, op.Object, false)
		if err != nil {
			return err
		}
		st.resize(ob, op.Offset)
	case objstore.OpRemove:
		m, err := st.coll(op.Collection)
		if err != nil {
			return err
		}
		ob, ok := m[op.Object]
		if !ok {
			return fmt.Errorf("object %s/%s: %w", op.Collection, op.Object, objstore.ErrNotFound)
		}
		st.used -= int64(len(ob.data))
		delete(m, op.Object)
	case objstore.OpSetAttr, objstore.OpRmAttr, objstore.OpOmapSetKeys, objstore.OpOmapRmKeys,
		objstore.OpOmapClear, objstore.OpOmapSetHeader:
		ob, err := st.obj(op.Collection, op.Object, false)
		if err != nil {
			return err
		}
		applyMeta(ob, op)
	case objstore.OpClone, objstore.OpRename:
		return st.copyObject(op)
	default:
		return fmt.Errorf("unknown op kind %d: %w", op.Kind, objstore.ErrInvalid)
	}
	return nil
}

func applyMeta(ob *object, op objstore.Op) {
	switch op.Kind {
	case objstore.OpSetAttr:
		ob.attrs[op.Name] = slices.Clone(op.Data)
	case objstore.OpRmAttr:
		delete(ob.attrs, op.Name)
	case objstore.OpOmapSetKeys:
		for k, v := range op.Entries {
			ob.omap[k] = slices.Clone(v)
		}
	case objstore.OpOmapRmKeys:
		for _, k := range op.Keys {
			delete(ob.omap, k)
		}
	case objstore.OpOmapClear:
		ob.omap = map[string][]byte{}
		ob.header = nil
	case objstore.OpOmapSetHeader:
		ob.header = slices.Clone(op.Data)
	}
}

func (st *staging) copyObject(op objstore.Op) error {
	if op.Dest == "" {
		return fmt.Errorf("empty destination: %w", objstore.ErrInvalid)
	}
	src, err := st.obj(op.Collection, op.Object, false)
	if err != nil {
		return err
	}
	m, _ := st.coll(op.Collection)
	if old, ok := m[op.Dest]; ok {
		if op.Kind == objstore.OpRename {
			return fmt.Errorf("object %s/%s: %w", op.Collection, op.Dest, objstore.ErrExists)
		}
		st.used -= int64(len(old.data))
	}
	if op.Kind == objstore.OpRename {
		delete(m, op.Object)
		m[op.Dest] = src
	} else {
		m[op.Dest] = src.clone()
		st.used += int64(len(src.data))
	}
	st.cloned[[2]string{op.Collection, op.Dest}] = true
	return nil
}

func (s *Store) get(c, o string) (*object, error) {
	m, ok := s.mu.colls[c]
	if !ok {
		return nil, fmt.Errorf("memstore: collection %q: %w", c, objstore.ErrNotFound)
	}
	ob, ok := m[o]
	if !ok {
		return nil, fmt.Errorf("memstore: object %s/%s: %w", c, o, objstore.ErrNotFound)
	}
	return ob, nil
}

// Read implements objstore.Store.
func (s *Store) Read(ctx context.Context, c, o string, off, length int64) ([]byte, error) {
	if off < 0 || length < 0 {
		return nil, fmt.Errorf("memstore: read at %d length %d: %w", off, length, objstore.ErrInvalid)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	ob, err := s.get(c, o)
	if err != nil {
		return nil, err
	}
	size := int64(len(ob.data))
	if off >= size {
		return []byte{}, nil
	}
	return bytes.Clone(ob.data[off:min(size, off+length)]), nil
}

// Stat implements objstore.Store.
func (s *Store) Stat(ctx context.Context, c, o string) (objstore.ObjectStat, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ob, err := s.get(c, o)
	if err != nil {
		return objstore.ObjectStat{}, err
	}
	return objstore.ObjectStat{Size: int64(len(ob.data))}, nil
}

// GetAttr implements objstore.Store.
func (s *Store) GetAttr(ctx context.Context, c, o, name string) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ob, err := s.get(c, o)
	if err != nil {
		return nil, err
	}
	v, ok := ob.attrs[name]
	if !ok {
		return nil, fmt.Errorf("memstore: attribute %q of %s/%s: %w", name, c, o, objstore.ErrNotFound)
	}
	return bytes.Clone(v), nil
}

// GetAttrs implements objstore.Store.
func (s *Store) GetAttrs(ctx context.Context, c, o string) (map[string][]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ob, err := s.get(c, o)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(ob.attrs))
	for k, v := range ob.attrs {
		out[k] = bytes.Clone(v)
	}
	return out, nil
}

// OmapGet implements objstore.Store.
func (s *Store) OmapGet(ctx context.Context, c, o string, keys []string) (map[string][]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ob, err := s.get(c, o)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, k := range keys {
		if v, ok := ob.omap[k]; ok {
			out[k] = bytes.Clone(v)
		}
	}
	return out, nil
}

// OmapGetHeader implements objstore.Store.
func (s *Store) OmapGetHeader(ctx context.Context, c, o string) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ob, err := s.get(c, o)
	if err != nil {
		return nil, err
	}
	return bytes.Clone(ob.header), nil
}

// OmapIterate implements objstore.Store. fn runs without the store's lock held.
func (s *Store) OmapIterate(ctx context.Context, c, o, startAfter string, fn func(string, []byte) bool) error {
	s.mu.RLock()
	ob, err := s.get(c, o)
	var snapshot map[string][]byte
	if err == nil {
		snapshot = maps.Clone(ob.omap)
	}
	s.mu.RUnlock()
	if err != nil {
		return err
	}
	keys := slices.Sorted(maps.Keys(snapshot))
	for _, k := range keys {
		if k <= startAfter {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !fn(k, bytes.Clone(snapshot[k])) {
			return nil
		}
	}
	return nil
}

// ListCollections implements objstore.Store.
func (s *Store) ListCollections(ctx context.Context) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Sorted(maps.Keys(s.mu.colls)), nil
}

// ListObjects implements objstore.Store.
func (s *Store) ListObjects(ctx context.Context, c, start string, limit int) ([]string, string, error) {
	if limit <= 0 {
		return nil, "", fmt.Errorf("memstore: list limit %d: %w", limit, objstore.ErrInvalid)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	m, ok := s.mu.colls[c]
	if !ok {
		return nil, "", fmt.Errorf("memstore: collection %q: %w", c, objstore.ErrNotFound)
	}
	names := slices.Sorted(maps.Keys(m))
	i := sort.SearchStrings(names, start)
	names = names[i:]
	if len(names) > limit {
		return slices.Clone(names[:limit]), names[limit], nil
	}
	return slices.Clone(names), "", nil
}

// Statfs implements objstore.Store.
func (s *Store) Statfs(ctx context.Context) (objstore.Statfs, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	total := s.capacity
	if total <= 0 {
		total = 1 << 50
	}
	return objstore.Statfs{Total: total, Used: s.mu.used, Available: total - s.mu.used}, nil
}

// String describes the store for test failure messages.
func (s *Store) String() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var b strings.Builder
	fmt.Fprintf(&b, "memstore %s: %d collections, %d bytes used", s.uuid, len(s.mu.colls), s.mu.used)
	return b.String()
}
