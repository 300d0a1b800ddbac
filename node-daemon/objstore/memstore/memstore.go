// Package memstore is an in-memory objstore.Store for tests of the node daemon's volume layer and
// gRPC server. It applies transactions through objstore.Apply, so it has the contract's op
// semantics and validation, and it passes the conformance suite (objstore/objstoretest).
//
// Data is sparse: objects hold their bytes in chunks of 4 KiB (data.go), and space is counted in
// chunks, like the engine's allocation units; a hole, a truncated tail or a zeroed whole chunk
// takes no space, so a huge sparse object costs no memory.
//
// Invariants: a Commit that returns an error leaves the store unchanged (ops are applied to copies
// of the touched collections and objects, txn.go, which replace the originals only when every op
// succeeded); Used is the space of the objects' chunks and never exceeds the capacity, which every
// op that allocates checks, so a transaction fails with ErrNoSpace before it holds more than the
// data it was given.
package memstore

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
)

// unlimited is the capacity of a store made with capacity <= 0.
const unlimited = 1 << 50

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

// New returns an empty store with the given UUID and capacity in bytes (<= 0: 1 PiB).
func New(uuid string, capacity int64) *Store {
	if capacity <= 0 {
		capacity = unlimited
	}
	s := &Store{uuid: uuid, capacity: capacity}
	s.mu.colls = make(map[string]map[string]*object)
	return s
}

// UUID implements objstore.Store.
func (s *Store) UUID() string { return s.uuid }

// Commit implements objstore.Store.
func (s *Store) Commit(ctx context.Context, ops []objstore.Op) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &staging{
		colls: maps.Clone(s.mu.colls), copied: map[string]bool{}, cloned: map[[2]string]bool{},
		used: s.mu.used, capacity: s.capacity,
	}
	if err := objstore.Apply(ops, st); err != nil {
		return fmt.Errorf("memstore: %w", err)
	}
	s.mu.colls = st.colls
	s.mu.used = st.used
	return nil
}

// getLocked returns committed object c/o after checking the names.
// REQUIRES: s.mu held (shared or exclusive).
func (s *Store) getLocked(c, o string) (*object, error) {
	if err := objstore.ValidateRef(c, o); err != nil {
		return nil, fmt.Errorf("memstore: %w", err)
	}
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

// view runs fn with committed object c/o under the shared lock. Committed objects are never
// changed (a transaction replaces them), so fn may keep references to their maps only while it runs.
func (s *Store) view(ctx context.Context, c, o string, fn func(*object)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	ob, err := s.getLocked(c, o)
	if err != nil {
		return err
	}
	fn(ob)
	return nil
}

// Read implements objstore.Store.
func (s *Store) Read(ctx context.Context, c, o string, off, length int64) ([]byte, error) {
	if err := objstore.ValidateRange(off, length); err != nil {
		return nil, fmt.Errorf("memstore: read: %w", err)
	}
	var out []byte
	err := s.view(ctx, c, o, func(ob *object) { out = ob.data.read(off, length) })
	return out, err
}

// ReadInto implements objstore.IntoReader.
func (s *Store) ReadInto(ctx context.Context, c, o string, off int64, p []byte) (int, error) {
	if err := objstore.ValidateRange(off, int64(len(p))); err != nil {
		return 0, fmt.Errorf("memstore: read: %w", err)
	}
	n := 0
	err := s.view(ctx, c, o, func(ob *object) { n = ob.data.readInto(off, p) })
	return n, err
}

var _ objstore.IntoReader = (*Store)(nil)

// Stat implements objstore.Store.
func (s *Store) Stat(ctx context.Context, c, o string) (objstore.ObjectStat, error) {
	var st objstore.ObjectStat
	err := s.view(ctx, c, o, func(ob *object) { st.Size = ob.data.size })
	return st, err
}

// GetAttr implements objstore.Store.
func (s *Store) GetAttr(ctx context.Context, c, o, name string) ([]byte, error) {
	if err := objstore.ValidateAttrName(name); err != nil {
		return nil, fmt.Errorf("memstore: %w", err)
	}
	var v []byte
	found := false
	err := s.view(ctx, c, o, func(ob *object) { v, found = ob.attrs[name] })
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("memstore: attribute %q of %s/%s: %w", name, c, o, objstore.ErrNotFound)
	}
	return slices.Clone(v), nil
}

// GetAttrs implements objstore.Store.
func (s *Store) GetAttrs(ctx context.Context, c, o string) (map[string][]byte, error) {
	var out map[string][]byte
	err := s.view(ctx, c, o, func(ob *object) { out = cloneValues(ob.attrs, nil) })
	return out, err
}

// OmapGet implements objstore.Store.
func (s *Store) OmapGet(ctx context.Context, c, o string, keys []string) (map[string][]byte, error) {
	var out map[string][]byte
	err := s.view(ctx, c, o, func(ob *object) { out = cloneValues(ob.omap, keys) })
	return out, err
}

// cloneValues copies the entries of m with the given keys (all of them if keys is nil).
func cloneValues(m map[string][]byte, keys []string) map[string][]byte {
	if keys == nil {
		keys = slices.Collect(maps.Keys(m))
	}
	out := make(map[string][]byte, len(keys))
	for _, k := range keys {
		if v, ok := m[k]; ok {
			out[k] = slices.Clone(v)
		}
	}
	return out
}

// OmapGetHeader implements objstore.Store.
func (s *Store) OmapGetHeader(ctx context.Context, c, o string) ([]byte, error) {
	var h []byte
	err := s.view(ctx, c, o, func(ob *object) { h = slices.Clone(ob.header) })
	return h, err
}

// OmapIterate implements objstore.Store. fn runs without the store's lock held, over the omap as
// it was when OmapIterate started.
func (s *Store) OmapIterate(ctx context.Context, c, o, startAfter string, fn func(string, []byte) bool) error {
	var snapshot map[string][]byte
	if err := s.view(ctx, c, o, func(ob *object) { snapshot = ob.omap }); err != nil {
		return err
	}
	for _, k := range slices.Sorted(maps.Keys(snapshot)) {
		if k <= startAfter {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !fn(k, slices.Clone(snapshot[k])) {
			return nil
		}
	}
	return nil
}

// ListCollections implements objstore.Store.
func (s *Store) ListCollections(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Sorted(maps.Keys(s.mu.colls)), nil
}

// ListObjects implements objstore.Store.
func (s *Store) ListObjects(ctx context.Context, c, start string, limit int) ([]string, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if err := objstore.ValidateCollection(c); err != nil {
		return nil, "", fmt.Errorf("memstore: %w", err)
	}
	if err := objstore.ValidateListLimit(limit); err != nil {
		return nil, "", fmt.Errorf("memstore: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	m, ok := s.mu.colls[c]
	if !ok {
		return nil, "", fmt.Errorf("memstore: collection %q: %w", c, objstore.ErrNotFound)
	}
	names := slices.Sorted(maps.Keys(m))
	names = names[sort.SearchStrings(names, start):]
	if len(names) > limit {
		return slices.Clone(names[:limit]), names[limit], nil
	}
	return names, "", nil
}

// Statfs implements objstore.Store.
func (s *Store) Statfs(ctx context.Context) (objstore.Statfs, error) {
	if err := ctx.Err(); err != nil {
		return objstore.Statfs{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return objstore.Statfs{Total: s.capacity, Used: s.mu.used, Available: s.capacity - s.mu.used}, nil
}

// CollectionUsage implements objstore.Store. The in-memory store copies data when it clones, so
// every byte a collection holds is its own: Exclusive equals Referenced.
func (s *Store) CollectionUsage(ctx context.Context, c string) (objstore.CollectionUsage, error) {
	if err := ctx.Err(); err != nil {
		return objstore.CollectionUsage{}, err
	}
	if err := objstore.ValidateCollection(c); err != nil {
		return objstore.CollectionUsage{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	m, ok := s.mu.colls[c]
	if !ok {
		return objstore.CollectionUsage{}, fmt.Errorf("collection %q: %w", c, objstore.ErrNotFound)
	}
	u := objstore.CollectionUsage{Objects: int64(len(m))}
	for _, ob := range m {
		u.Referenced += ob.data.used()
	}
	u.Exclusive = u.Referenced
	return u, nil
}

// String describes the store for test failure messages.
func (s *Store) String() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return fmt.Sprintf("memstore %s: %d collections, %d bytes used", s.uuid, len(s.mu.colls), s.mu.used)
}
