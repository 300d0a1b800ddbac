package server

import (
	"fmt"
	"sort"
	"sync"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
	"github.com/cobaltstore/cobalt/node-daemon/volume"
)

// Mounted is a store the daemon serves: the store, its volumes and the device it lives on.
type Mounted struct {
	Store      objstore.Store
	Volumes    *volume.Manager
	DevicePath string
}

// Stores is the set of mounted stores, keyed by UUID. It is safe for concurrent use; the daemon
// adds stores as devices are prepared and removes them before unmounting.
type Stores struct {
	// mu guards the fields in this struct.
	mu struct {
		sync.RWMutex
		byUUID map[string]*Mounted
	}
}

// NewStores returns an empty set.
func NewStores() *Stores {
	s := &Stores{}
	s.mu.byUUID = make(map[string]*Mounted)
	return s
}

// Add registers a mounted store; adding a UUID twice is an error.
func (s *Stores) Add(m *Mounted) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	uuid := m.Store.UUID()
	if _, ok := s.mu.byUUID[uuid]; ok {
		return fmt.Errorf("server: store %s is already registered", uuid)
	}
	s.mu.byUUID[uuid] = m
	return nil
}

// Remove unregisters a store; new requests for it get NotFound.
func (s *Stores) Remove(uuid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.mu.byUUID, uuid)
}

// Get returns the store with the given UUID, or an error wrapping objstore.ErrNotFound.
func (s *Stores) Get(uuid string) (*Mounted, error) {
	if uuid == "" {
		return nil, fmt.Errorf("store_uuid is empty: %w", objstore.ErrInvalid)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	m, ok := s.mu.byUUID[uuid]
	if !ok {
		return nil, fmt.Errorf("store %s is not served by this node: %w", uuid, objstore.ErrNotFound)
	}
	return m, nil
}

// List returns the mounted stores sorted by UUID.
func (s *Stores) List() []*Mounted {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Mounted, 0, len(s.mu.byUUID))
	for _, m := range s.mu.byUUID {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Store.UUID() < out[j].Store.UUID() })
	return out
}
