package cache

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeTunable records budgets and reports scripted counters.
type fakeTunable struct {
	mu       sync.Mutex
	budgets  []int64
	counters TuneCounters
}

func (f *fakeTunable) SetBudget(b int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.budgets = append(f.budgets, b)
	f.counters.Usage = b // always full
}

func (f *fakeTunable) TuneCounters() TuneCounters {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counters
}

func (f *fakeTunable) rounds() []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int64(nil), f.budgets...)
}

func TestTunerStartRunsRoundsUntilCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		on, buf, kv := &fakeTunable{}, &fakeTunable{}, &fakeTunable{}
		pool := NewMempool()
		tu, err := NewTuner(pool, [NumTuned]Tunable{on, buf, kv}, TunerOptions{
			Config:   TuneConfig{Target: 1000, Min: [NumTuned]int64{10, 10, 10}},
			Interval: time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- tu.Start(ctx) }()
		synctest.Wait()
		if got := on.rounds(); len(got) != 1 || got[0] != 450 {
			t.Fatalf("after start: onode budgets %v, want [450]", got)
		}
		// The buffer cache starts seeing ghost hits: each round moves a step its way.
		buf.mu.Lock()
		buf.counters.GhostHits, buf.counters.GhostBytes = 100, 100
		buf.mu.Unlock()
		time.Sleep(3*time.Second + time.Millisecond)
		synctest.Wait()
		if got := buf.rounds(); len(got) != 4 || got[1] != 150 {
			t.Fatalf("buffer budgets %v, want 4 rounds with a step of 50 at the second", got)
		}
		if kv := pool.Bytes(CategoryKV); kv != kv0(tu) {
			t.Fatalf("mempool kv %d, report %d", kv, kv0(tu))
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Start returned %v", err)
		}
	})
}

func kv0(tu *Tuner) int64 { return tu.Last().Usage[CategoryKV] }

func TestNewTunerValidates(t *testing.T) {
	if _, err := NewTuner(nil, [NumTuned]Tunable{}, TunerOptions{Config: TuneConfig{Target: 1}}); err == nil {
		t.Error("nil pool accepted")
	}
	if _, err := NewTuner(NewMempool(), [NumTuned]Tunable{}, TunerOptions{}); err == nil {
		t.Error("zero target accepted")
	}
	if _, err := NewTuner(NewMempool(), [NumTuned]Tunable{}, TunerOptions{Config: TuneConfig{Target: 1}, Interval: -1}); err == nil {
		t.Error("negative interval accepted")
	}
}

// TestTunerFollowsGhostHits wires real caches: a buffer workload that keeps re-reading data
// just evicted (ghost hits) wins memory from an idle Onode cache, and budgets are applied.
func TestTunerFollowsGhostHits(t *testing.T) {
	pool := NewMempool()
	// One shard each, so that the outcome does not depend on the hash seed.
	onodes, err := NewOnodeCache[int](Options{Pool: pool, Shards: 1})
	if err != nil {
		t.Fatal(err)
	}
	bufs, err := NewBufferCache(BufferOptions{Options: Options{Pool: pool, Shards: 1}})
	if err != nil {
		t.Fatal(err)
	}
	tu, err := NewTuner(pool, [NumTuned]Tunable{onodes, bufs, nil}, TunerOptions{
		Config: TuneConfig{Target: 4 << 20, Min: [NumTuned]int64{64 << 10, 64 << 10, 0}},
	})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := tu.Step()
	if err != nil {
		t.Fatal(err)
	}
	first := rep.Budgets[TunedBuffers]
	if bufs.Capacity() != first || rep.Budgets[TunedKV] != 0 {
		t.Fatalf("budgets %v not applied (buffer capacity %d)", rep.Budgets, bufs.Capacity())
	}
	data := make([]byte, 4096)
	var maxGain float64
	for i := range uint64(10000) {
		// A loop over 200 pages of 20 objects, a bit larger than the buffer cache.
		page := i % 200
		obj := ObjectKey{"c", fmt.Sprint("o", page%20)}
		off := page / 20 * 4096
		_, tok, _ := bufs.ReadInto(obj, off, data, nil)
		if _, err := bufs.InsertRead(obj, off, data, tok); err != nil {
			t.Fatal(err)
		}
		if i%1000 == 999 {
			if rep, err = tu.Step(); err != nil {
				t.Fatal(err)
			}
			maxGain = max(maxGain, rep.Gains[TunedBuffers])
		}
	}
	// Once the loop fits, ghost hits stop and the budget settles.
	if rep.Budgets[TunedBuffers] <= first || maxGain <= 0 {
		t.Fatalf("buffer budget %d (first %d), max gain %v", rep.Budgets[TunedBuffers], first, maxGain)
	}
	before := bufs.Metrics().Total.Hits
	for page := range uint64(200) {
		_, _, _ = bufs.ReadInto(ObjectKey{"c", fmt.Sprint("o", page%20)}, page/20*4096, data, nil)
	}
	if hits := bufs.Metrics().Total.Hits - before; hits < 190 {
		t.Fatalf("only %d of 200 pages of the loop are cached after tuning", hits)
	}
	if got := pool.Bytes(CategoryBuffers); got > rep.Budgets[TunedBuffers] {
		t.Fatalf("buffers use %d over their budget %d", got, rep.Budgets[TunedBuffers])
	}
}
