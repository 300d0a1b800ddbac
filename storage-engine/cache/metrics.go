package cache

// ListMetrics describes one list of a shard (A1in, Am and A1out for 2Q; LRU for lru).
type ListMetrics struct {
	// Name is "A1in", "Am", "A1out" or "LRU".
	Name string
	// Hits are references found on the list. For A1out they are ghost hits: misses of the cache
	// whose key was still remembered, so the entry went straight to Am.
	Hits int64
	// Evictions are entries that left the list under pressure (A1in: to A1out; A1out: ghosts
	// forgotten; Am and LRU: evicted).
	Evictions int64
	// Entries is the number of entries (ghosts for A1out) on the list now.
	Entries int64
	// Charge is their total in the cache's unit (entries or bytes).
	Charge int64
	// Bytes is the memory they account (0 for A1out: ghosts hold no value).
	Bytes int64
}

// ShardMetrics describes one shard. Counters are cumulative since the cache was created.
type ShardMetrics struct {
	Hits, Misses, Inserts, Evictions int64
	// GhostHits is the A1out hit count (0 for lru): misses that a bigger cache would have hit.
	GhostHits int64
	// GhostCharge is A1out's charge now: the window of capacity the ghost hits were seen in.
	GhostCharge int64
	// Entries, Charge and Bytes are resident totals now; Capacity is the shard's capacity.
	Entries, Charge, Bytes, Capacity int64
	// Pinned and Dirty count held entries now (for a BufferCache, Dirty counts writing buffers).
	Pinned, Dirty int64
	Lists         []ListMetrics
}

// Metrics describes a whole cache: totals over shards, and each shard.
type Metrics struct {
	// Policy is the replacement policy in use.
	Policy PolicyKind
	// Total sums every counter over the shards; Total.Lists sums the lists by name.
	Total  ShardMetrics
	Shards []ShardMetrics
}

// HitRatio is hits / (hits + misses), or 0 before any lookup.
func (m ShardMetrics) HitRatio() float64 {
	if m.Hits+m.Misses == 0 {
		return 0
	}
	return float64(m.Hits) / float64(m.Hits+m.Misses)
}

// sumMetrics fills the Total of a Metrics from its Shards.
func sumMetrics(policy PolicyKind, shards []ShardMetrics) Metrics {
	m := Metrics{Policy: policy, Shards: shards}
	t := &m.Total
	for _, s := range shards {
		t.Hits += s.Hits
		t.Misses += s.Misses
		t.Inserts += s.Inserts
		t.Evictions += s.Evictions
		t.GhostHits += s.GhostHits
		t.GhostCharge += s.GhostCharge
		t.Entries += s.Entries
		t.Charge += s.Charge
		t.Bytes += s.Bytes
		t.Capacity += s.Capacity
		t.Pinned += s.Pinned
		t.Dirty += s.Dirty
		for i, l := range s.Lists {
			if i >= len(t.Lists) {
				t.Lists = append(t.Lists, ListMetrics{Name: l.Name})
			}
			tl := &t.Lists[i]
			tl.Hits += l.Hits
			tl.Evictions += l.Evictions
			tl.Entries += l.Entries
			tl.Charge += l.Charge
			tl.Bytes += l.Bytes
		}
	}
	return m
}
