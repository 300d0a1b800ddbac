package replica_test

import (
	"context"
	"testing"
	"time"

	"github.com/cobaltstore/cobalt/node-daemon/replica"
)

// BenchmarkReconcileAtOpen measures what a new coordinator (a takeover or a restart) spends to
// make its in-sync replicas agree before I/O, on two replicas (one over mTLS on loopback) of a
// volume with 256 MiB written long ago (its intent cleared) and 4 MiB written just before the old
// coordinator went away: "full" compares every written extent (Scrub, what every Open did before
// the write-intent log), "intent" compares the union of the replicas' write intent
// (IntentExtents, then Verify). Each iteration opens a coordinator of a newer generation.
func BenchmarkReconcileAtOpen(b *testing.B) {
	const (
		id      = "reconcile"
		size    = 512 << 20
		written = 256 << 20
		hot     = 4 << 20
	)
	c := newCluster(b, 2, 2<<30)
	c.createVolume(b, id, size, 0)
	ctx := context.Background()
	old, err := c.coordinate(b, id, 1, &recorder{}, c.nodes[0], c.nodes[1])
	if err != nil {
		b.Fatal(err)
	}
	if err := old.ClearAllIntent(ctx); err != nil { // the copies agree: start the logs
		b.Fatal(err)
	}
	data := make([]byte, 1<<20)
	for off := int64(0); off < written; off += int64(len(data)) {
		data[0], data[4096] = byte(off>>20), byte(off>>24)
		if err := old.Write(ctx, off, data); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := old.ClearIdleIntent(ctx, 0); err != nil {
		b.Fatal(err)
	}
	for off := int64(written); off < written+hot; off += int64(len(data)) {
		if err := old.Write(ctx, off, data); err != nil {
			b.Fatal(err)
		}
	}
	gen := uint64(1)
	for _, mode := range []string{"full", "intent"} {
		b.Run(mode, func(b *testing.B) {
			var compared int64
			for b.Loop() {
				gen++
				co, err := c.coordinate(b, id, gen, &recorder{}, c.nodes[0], c.nodes[1])
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				var res replica.ScrubResult
				if mode == "full" {
					res, err = co.Scrub(ctx, replica.SyncOptions{})
				} else {
					var ext []replica.Extent
					if ext, err = co.IntentExtents(ctx); err == nil {
						res, err = co.Verify(ctx, ext, replica.SyncOptions{})
					}
				}
				if err != nil {
					b.Fatal(err)
				}
				if len(res.Mismatches) != 0 {
					b.Fatalf("the copies differ: %v", res.Mismatches)
				}
				compared = res.Compared
				b.Logf("reconcile at open (%s): compared %d MiB in %s", mode, res.Compared>>20, time.Since(start).Round(time.Millisecond))
			}
			b.ReportMetric(float64(compared>>20), "MiB-compared")
		})
	}
}
