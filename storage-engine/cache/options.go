package cache

import (
	"fmt"
	"strings"
)

// PolicyKind names a replacement policy.
type PolicyKind string

const (
	// Policy2Q is the 2Q policy of Johnson & Shasha (the default).
	Policy2Q PolicyKind = "2q"
	// PolicyLRU is a plain least-recently-used list.
	PolicyLRU PolicyKind = "lru"
)

// ParsePolicy parses a policy name ("2q" or "lru", case-insensitive; "" means 2q).
func ParsePolicy(s string) (PolicyKind, error) {
	switch PolicyKind(strings.ToLower(strings.TrimSpace(s))) {
	case "", Policy2Q:
		return Policy2Q, nil
	case PolicyLRU:
		return PolicyLRU, nil
	}
	return "", fmt.Errorf("cache: unknown policy %q (want %q or %q)", s, Policy2Q, PolicyLRU)
}

// Unit is what a cache's capacity counts.
type Unit int

const (
	// UnitEntries charges 1 per entry (the Onode cache).
	UnitEntries Unit = iota
	// UnitBytes charges an entry's bytes (the buffer cache).
	UnitBytes
)

// Default shard counts, as BlueStore uses them.
const (
	DefaultShardsNonRotational = 8
	DefaultShardsRotational    = 5
	// DefaultRatio is the default for KinRatio and KoutRatio.
	DefaultRatio = 0.5
	// DefaultEntryBytesHint is the assumed memory per entry of an entry-counted cache before
	// any entry has been inserted (used to turn a byte budget into an entry capacity).
	DefaultEntryBytesHint = 1024
	// maxShards bounds Options.Shards.
	maxShards = 1024
)

// DefaultShards is the shard count for a device: 5 when rotational, 8 otherwise.
func DefaultShards(rotational bool) int {
	if rotational {
		return DefaultShardsRotational
	}
	return DefaultShardsNonRotational
}

// Options configure a Cache or a BufferCache. The zero value is usable: 2Q, 8 shards, no
// capacity (everything unpinned is evicted at once) until SetCapacity or SetBudget.
type Options struct {
	// Policy is "2q" (default) or "lru".
	Policy PolicyKind
	// Shards is the number of shards; 0 picks DefaultShards(Rotational).
	Shards int
	// Rotational says the device is a spinning disk (only used when Shards is 0).
	Rotational bool
	// Capacity is the initial total capacity in the cache's unit, split evenly among shards.
	Capacity int64
	// Unit is what Capacity counts (Cache only; a BufferCache always counts bytes).
	Unit Unit
	// KinRatio is A1in's share of a shard's capacity (2Q only); 0 means 0.5.
	KinRatio float64
	// KoutRatio bounds A1out's ghost charge as a share of a shard's capacity (2Q only); 0 means 0.5.
	KoutRatio float64
	// EntryBytesHint is the memory assumed per entry before any is cached (UnitEntries only,
	// used by SetBudget); 0 means DefaultEntryBytesHint.
	EntryBytesHint int64
	// Pool receives the cache's bytes under Category; nil gives the cache a private Mempool.
	Pool *Mempool
	// Category is the Mempool category the cache's bytes are counted in.
	Category Category
}

// withDefaults returns a copy of o with defaults applied.
func (o Options) withDefaults() Options {
	if o.Policy == "" {
		o.Policy = Policy2Q
	}
	if o.Shards == 0 {
		o.Shards = DefaultShards(o.Rotational)
	}
	if o.KinRatio == 0 {
		o.KinRatio = DefaultRatio
	}
	if o.KoutRatio == 0 {
		o.KoutRatio = DefaultRatio
	}
	if o.EntryBytesHint == 0 {
		o.EntryBytesHint = DefaultEntryBytesHint
	}
	if o.Pool == nil {
		o.Pool = NewMempool()
	}
	return o
}

// validate reports the first invalid field of o (after withDefaults).
func (o Options) validate() error {
	if _, err := ParsePolicy(string(o.Policy)); err != nil {
		return err
	}
	if o.Shards < 1 || o.Shards > maxShards {
		return fmt.Errorf("cache: shards %d out of range [1, %d]", o.Shards, maxShards)
	}
	if o.Capacity < 0 {
		return fmt.Errorf("cache: negative capacity %d", o.Capacity)
	}
	if o.Unit != UnitEntries && o.Unit != UnitBytes {
		return fmt.Errorf("cache: unknown unit %d", o.Unit)
	}
	if !(o.KinRatio > 0 && o.KinRatio < 1) {
		return fmt.Errorf("cache: kin ratio %v out of range (0, 1)", o.KinRatio)
	}
	if !(o.KoutRatio > 0 && o.KoutRatio <= 4) {
		return fmt.Errorf("cache: kout ratio %v out of range (0, 4]", o.KoutRatio)
	}
	if o.EntryBytesHint < 0 {
		return fmt.Errorf("cache: negative entry bytes hint %d", o.EntryBytesHint)
	}
	if o.Category < 0 || o.Category >= NumCategories {
		return fmt.Errorf("cache: unknown mempool category %d", o.Category)
	}
	return nil
}
