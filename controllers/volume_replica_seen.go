package controllers

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// replicaStatesSeen remembers the state of each copy of each replicated Volume as the
// reconciler last wrote or read it, so that it can tell when the serving node made a
// CatchingUp copy InSync (the ReplicaInSync event): that change is the node's, and status
// keeps no history of it. The memory is the process's: after an operator restart the first
// reconcile of a Volume only remembers, so a copy that became InSync while the operator was
// down gets no event (its status says InSync all the same).
type replicaStatesSeen struct {
	mu struct {
		sync.Mutex
		// byVolume maps a Volume's UID to the state of each of its copies, by Store.
		byVolume map[types.UID]map[string]v1alpha1.ReplicaState
	}
}

// backInSync returns the Stores of the copies that are InSync in replicas and were last seen
// CatchingUp.
func (s *replicaStatesSeen) backInSync(vol types.UID, replicas []v1alpha1.VolumeReplica) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := s.mu.byVolume[vol]
	var out []string
	for _, e := range replicas {
		if e.State == v1alpha1.ReplicaInSync && seen[e.Store] == v1alpha1.ReplicaCatchingUp {
			out = append(out, e.Store)
		}
	}
	return out
}

// remember records the states of replicas as the last seen of vol's copies.
func (s *replicaStatesSeen) remember(vol types.UID, replicas []v1alpha1.VolumeReplica) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.byVolume == nil {
		s.mu.byVolume = map[types.UID]map[string]v1alpha1.ReplicaState{}
	}
	states := make(map[string]v1alpha1.ReplicaState, len(replicas))
	for _, e := range replicas {
		states[e.Store] = e.State
	}
	s.mu.byVolume[vol] = states
}

// forget drops what is remembered of vol.
func (s *replicaStatesSeen) forget(vol types.UID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.mu.byVolume, vol)
}
