package replvol

import (
	"cmp"
	"maps"
	"slices"
	"time"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// ReplicationStat is one copy of one open replicated volume, for metrics.
type ReplicationStat struct {
	// Volume is "<namespace>/<name>"; Store and Node name the copy.
	Volume, Store, Node string
	// State is the copy's state as the data path sees it: InSync when the coordinator writes it
	// as in sync, otherwise the state the status last said or this node wrote (CatchingUp, Lost,
	// Pending; a status InSync not yet corrected reads CatchingUp).
	State string
	// Generation is the coordinator's attachment generation.
	Generation uint64
	// DirtyBytes is the size of the regions the copy is known to miss (replica lag).
	DirtyBytes int64
	// SyncedBytes is the bytes copied onto the copy by kind (KindRebuild, KindResync), in total
	// since Open.
	SyncedBytes map[string]int64
	// ComparedBytes is the bytes compared after the copy's syncs, in total since Open.
	ComparedBytes int64
	// ScrubbedBytes is the bytes scrubs compared on the copy (their checksums deep read), in
	// total since Open.
	ScrubbedBytes int64
	// ScrubMismatches counts the blocks scrubs found bad on the copy (differing from the good
	// copy, or unreadable because its engine found them corrupt), and the blocks that differed
	// between it and another copy with no way to tell the good one, in total since Open.
	ScrubMismatches int64
	// ScrubRepairedBytes is the bytes scrubs repaired onto the copy from a good one, in total
	// since Open.
	ScrubRepairedBytes int64
	// LastScrub is when the volume's last scrub that ran to its end ended (the same for every
	// copy of the volume); zero before the first.
	LastScrub time.Time
}

// ReplicationStats returns a stat per copy of every open volume, by volume and store.
func (v *Volumes) ReplicationStats() []ReplicationStat {
	v.mu.Lock()
	open := make([]*backend, 0, len(v.mu.open))
	for _, b := range v.mu.open {
		if b != nil {
			open = append(open, b)
		}
	}
	v.mu.Unlock()
	var out []ReplicationStat
	for _, b := range open {
		out = append(out, b.stats()...)
	}
	slices.SortFunc(out, func(a, b ReplicationStat) int {
		return cmp.Or(cmp.Compare(a.Volume, b.Volume), cmp.Compare(a.Store, b.Store))
	})
	return out
}

func (b *backend) stats() []ReplicationStat {
	inSync := map[string]bool{}
	for _, name := range b.co.InSync() {
		inSync[name] = true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	last := b.mu.lastScrub
	out := make([]ReplicationStat, 0, len(b.mu.copies))
	for store, cs := range b.mu.copies {
		state := cs.state
		switch {
		case inSync[store]:
			state = v1alpha1.ReplicaInSync
		case state == v1alpha1.ReplicaInSync:
			state = v1alpha1.ReplicaCatchingUp
		}
		out = append(out, ReplicationStat{
			Volume:        b.ref.key.String(),
			Store:         store,
			Node:          cs.node,
			State:         string(state),
			Generation:    b.ref.gen,
			DirtyBytes:    b.co.Dirty().Bytes(store),
			SyncedBytes:   maps.Clone(cs.synced),
			ComparedBytes: cs.compared,

			ScrubbedBytes:      cs.scrubbed,
			ScrubMismatches:    cs.scrubMismatches,
			ScrubRepairedBytes: cs.scrubRepaired,
			LastScrub:          last,
		})
	}
	return out
}
