package store

import "github.com/cobaltstore/cobalt/storage-engine/cache"

// Buffered writes (Options.BufferedWrites).
//
// While a group is staged, the data of its writes is noted per object (cachedWrites). When the
// group is published (under the gate, the moment its writes become visible to readers), the
// noted data enters the object's BufferSpace in state writing, tagged with the group's cacheSeq;
// once the group's KV commit is durable, the syncer turns those buffers clean (or drops the ones
// written with Transaction.WriteNoCache). A group whose commit fails drops them.
//
// Only data that is the object's content after the whole group is noted: an operation that
// changes an object other than by writing it (zero, truncate, remove, clone onto it, rename from
// or onto it) forgets the object's earlier noted writes and has its cached data discarded at
// publication, as without buffered writes. An object that the group only wrote keeps its cached
// data outside the written ranges.
//
// With BufferedWrites off nothing is noted and every object a group changed has its cached data
// discarded at publication.

// cachedWrites is what a group will cache of one object.
type cachedWrites struct {
	// discard: the group changed the object other than by writing it, so all its cached data
	// goes at publication (before the writes below are cached).
	discard bool
	writes  []cachedWrite
}

type cachedWrite struct {
	off     uint64
	data    []byte // the transaction's copy, never modified
	nocache bool
}

// nextGroup returns a fresh cacheSeq. REQUIRES: s.commitMu.
func (s *Store) nextGroup() uint64 {
	s.groupSeq++
	return s.groupSeq
}

func (g *group) cachedFor(k OnodeKey) *cachedWrites {
	cw := g.cached[k]
	if cw == nil {
		cw = &cachedWrites{}
		g.cached[k] = cw
	}
	return cw
}

// noteWrite records a staged write of data at off.
func (g *group) noteWrite(k OnodeKey, off uint64, data []byte, nocache bool) {
	if !g.s.opts.BufferedWrites || len(data) == 0 {
		return
	}
	cw := g.cachedFor(k)
	cw.writes = append(cw.writes, cachedWrite{off: off, data: data, nocache: nocache})
}

// noteReplace records a staged change of the object other than a write.
func (g *group) noteReplace(k OnodeKey) {
	if !g.s.opts.BufferedWrites {
		return
	}
	cw := g.cachedFor(k)
	cw.discard, cw.writes = true, nil
}

// publishBuffers updates the cached data of an object the group changed: its buffers are
// discarded, unless the group only wrote it with buffered writes on; then the group's writes
// enter its BufferSpace in state writing.
// REQUIRES: s.gate held exclusively.
func (g *group) publishBuffers(k OnodeKey) {
	c := g.s.caches
	cw := g.cached[k]
	if cw == nil || cw.discard {
		c.discard(k)
	}
	if cw == nil {
		return
	}
	for _, w := range cw.writes {
		if err := c.buffers.Write(cache.ObjectKey(k), w.off, w.data, g.cacheSeq, w.nocache); err != nil {
			// Only an overflowing range fails, which staging refuses; drop the object's data.
			c.discard(k)
			return
		}
	}
}

// finishBuffers makes the group's written buffers clean (or drops the no-cache ones): called
// once the group's commit is durable.
func (g *group) finishBuffers() {
	for k, cw := range g.cached {
		if len(cw.writes) > 0 {
			g.s.caches.buffers.FinishWrite(cache.ObjectKey(k), g.cacheSeq)
		}
	}
}

// dropBuffers discards the cached data of the objects the group wrote: its commit failed after
// publication, so its writing buffers never become clean.
func (g *group) dropBuffers() {
	for k, cw := range g.cached {
		if len(cw.writes) > 0 {
			g.s.caches.discard(k)
		}
	}
}
