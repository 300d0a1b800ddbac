package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestReplicationCollectorReportsEachCopy(t *testing.T) {
	stats := []ReplicaStat{
		{Volume: "ns/v", Store: "s1", Node: "a", State: "InSync", Generation: 3, SyncedBytes: map[string]int64{}},
		{Volume: "ns/v", Store: "s2", Node: "b", State: "CatchingUp", Generation: 3, DirtyBytes: 1 << 20,
			SyncedBytes: map[string]int64{"resync": 4096, "rebuild": 8192}, ComparedBytes: 65536,
			ScrubbedBytes: 1 << 30, ScrubMismatches: 2, ScrubRepairedBytes: 8192, LastScrub: time.Unix(1700000000, 0)},
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(NewReplicationCollector(func() []ReplicaStat { return stats })); err != nil {
		t.Fatal(err)
	}
	got := gather(t, reg)
	for series, want := range map[string]float64{
		`cobalt_replica_in_sync{node="a",store="s1",volume="ns/v"}`:                           1,
		`cobalt_replica_catching_up{node="a",store="s1",volume="ns/v"}`:                       0,
		`cobalt_replica_in_sync{node="b",store="s2",volume="ns/v"}`:                           0,
		`cobalt_replica_catching_up{node="b",store="s2",volume="ns/v"}`:                       1,
		`cobalt_replica_dirty_bytes{node="b",store="s2",volume="ns/v"}`:                       1 << 20,
		`cobalt_replica_synced_bytes_total{kind="resync",node="b",store="s2",volume="ns/v"}`:  4096,
		`cobalt_replica_synced_bytes_total{kind="rebuild",node="b",store="s2",volume="ns/v"}`: 8192,
		`cobalt_replica_compared_bytes_total{node="b",store="s2",volume="ns/v"}`:              65536,
		`cobalt_replica_generation{volume="ns/v"}`:                                            3,
	} {
		if v, ok := got[series]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", series, v, ok, want)
		}
	}
	// A volume closed since the last scrape disappears from the next.
	stats = nil
	if got := gather(t, reg); len(got) != 0 {
		t.Fatalf("after close: %d series", len(got))
	}
}
