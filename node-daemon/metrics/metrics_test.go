package metrics

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestCollectorReportsEachStore(t *testing.T) {
	snaps := []StoreSnapshot{{
		UUID: "u1", DevicePath: "/dev/loop0", TotalBytes: 1000, UsedBytes: 250, Commits: 7, BytesWritten: 4096,
		CommitLatency:      Latency{P50: time.Millisecond, P99: 3 * time.Millisecond, Max: 5 * time.Millisecond},
		AllocFragmentation: 0.25, CacheShards: []Shard{{Cache: "onode", Index: 0, Hits: 10, Misses: 2}, {Cache: "onode", Index: 1, Hits: 5, Misses: 1, Bytes: 100}},
		Health: HealthDegraded, MetadataBackgroundErrors: 4, MetadataDiskSlow: 2, MetadataWriteStalls: 1, MetadataWriteStalled: true,
		MetadataSyncs: 40, MetadataSyncWrite: 2 * time.Second, MetadataSyncFlush: 3 * time.Second, MetadataSyncJournal: 250 * time.Millisecond,
	}}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(NewCollector(func() []StoreSnapshot { return snaps })); err != nil {
		t.Fatal(err)
	}
	got := gather(t, reg)
	for series, want := range map[string]float64{
		`cobalt_store_used_bytes{device="/dev/loop0",store="u1"}`:                                  250,
		`cobalt_store_commits_total{device="/dev/loop0",store="u1"}`:                               7,
		`cobalt_store_cache_hits_total{cache="onode",device="/dev/loop0",shard="1",store="u1"}`:    5,
		`cobalt_store_cache_misses_total{cache="onode",device="/dev/loop0",shard="0",store="u1"}`:  2,
		`cobalt_store_latency_seconds{device="/dev/loop0",op="commit",quantile="0.99",store="u1"}`: 0.003,
		`cobalt_store_alloc_fragmentation_ratio{device="/dev/loop0",store="u1"}`:                   0.25,
		`cobalt_store_metadata_background_errors_total{device="/dev/loop0",store="u1"}`:            4,
		`cobalt_store_metadata_disk_slow_total{device="/dev/loop0",store="u1"}`:                    2,
		`cobalt_store_metadata_write_stalls_total{device="/dev/loop0",store="u1"}`:                 1,
		`cobalt_store_metadata_write_stalled{device="/dev/loop0",store="u1"}`:                      1,
		`cobalt_store_health{device="/dev/loop0",state="Degraded",store="u1"}`:                     1,
		`cobalt_store_metadata_syncs_total{device="/dev/loop0",store="u1"}`:                        40,
		`cobalt_store_metadata_sync_seconds_total{device="/dev/loop0",phase="write",store="u1"}`:   2,
		`cobalt_store_metadata_sync_seconds_total{device="/dev/loop0",phase="flush",store="u1"}`:   3,
		`cobalt_store_metadata_sync_seconds_total{device="/dev/loop0",phase="journal",store="u1"}`: 0.25,
		`cobalt_store_health{device="/dev/loop0",state="OK",store="u1"}`:                           0,
		`cobalt_store_health{device="/dev/loop0",state="Failed",store="u1"}`:                       0,
	} {
		if v, ok := got[series]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", series, v, ok, want)
		}
	}
	// A store that goes away disappears from the next scrape.
	snaps = nil
	if got := gather(t, reg); len(got) != 0 {
		t.Fatalf("after unmount: %d series", len(got))
	}
	if got := (StoreSnapshot{CacheShards: []Shard{{Hits: 1}, {Hits: 2, Misses: 3}}}).CacheTotals(); got.Hits != 3 || got.Misses != 3 {
		t.Fatalf("CacheTotals = %+v", got)
	}
}

func TestGRPCInterceptorObserves(t *testing.T) {
	g := NewGRPC()
	reg := prometheus.NewPedanticRegistry()
	if err := g.Register(reg); err != nil {
		t.Fatal(err)
	}
	info := &grpc.UnaryServerInfo{FullMethod: "/cobalt.node.v1.VolumeService/Write"}
	_, _ = g.Unary(context.Background(), nil, info, func(context.Context, any) (any, error) { return nil, nil })
	_, _ = g.Unary(context.Background(), nil, info, func(context.Context, any) (any, error) {
		return nil, status.Error(codes.NotFound, "x")
	})
	_ = g.Stream(nil, nil, &grpc.StreamServerInfo{FullMethod: "/s"}, func(any, grpc.ServerStream) error { return errors.New("plain") })
	got := gather(t, reg)
	if len(got) != 3 {
		t.Fatalf("series %v, want 3 (OK, NotFound, Unknown)", got)
	}
	if _, ok := got[`cobalt_node_grpc_request_duration_seconds{code="NotFound",method="/cobalt.node.v1.VolumeService/Write"}`]; !ok {
		t.Fatalf("no NotFound series in %v", got)
	}
	if n := len(got); n != 3 {
		t.Fatalf("%d series, want 3 (OK, NotFound, Unknown)", n)
	}
}

// gather scrapes reg into "name{label=value,...}" -> value (histograms: their sample count).
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"=\""+l.GetValue()+"\"")
			}
			key := f.GetName() + "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[key] = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				out[key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}
