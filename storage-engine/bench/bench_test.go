package bench

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cobaltstore/cobalt/storage-engine/bench/fio"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/store"
	"github.com/cockroachdb/pebble/v2/vfs"
)

func TestFromFio(t *testing.T) {
	r := fromFio(fio.Result{Name: "x", IOPS: 2000, BytesPerSec: 8192000, LatP50: time.Millisecond, LatP99: 3 * time.Millisecond,
		Runtime: 2 * time.Second, IOs: 4000})
	if r.IOPS() != 2000 || r.MBps() != 8.192 || r.P50 != time.Millisecond || r.P99 != 3*time.Millisecond {
		t.Fatalf("converted %+v (IOPS %v MB/s %v)", r, r.IOPS(), r.MBps())
	}
}

func TestPercentilesAndPrint(t *testing.T) {
	var l latencies
	for i := 1; i <= 100; i++ {
		l = append(l, time.Duration(i)*time.Millisecond)
	}
	p50, p99 := l.percentiles()
	if p50 != 51*time.Millisecond || p99 != 100*time.Millisecond {
		t.Fatalf("p50 %v p99 %v", p50, p99)
	}
	var buf bytes.Buffer
	rows := []Row{{Store: Result{Name: "w", Ops: 50, Elapsed: time.Second}, Fio: Result{Ops: 100, Elapsed: time.Second}}}
	if err := Print(&buf, rows); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "50%") {
		t.Fatalf("table has no store/fio ratio:\n%s", buf.String())
	}
}

// TestWorkloadsRun runs every store workload briefly on an in-memory device.
func TestWorkloadsRun(t *testing.T) {
	ctx := context.Background()
	dev := blockdev.NewMem(256<<20, 4096)
	fs := vfs.NewMem()
	dir := filepath.Join("db")
	if _, err := store.Mkfs(ctx, dev, dir, store.MkfsOptions{FS: fs}); err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(ctx, dev, dir, store.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cfg := Config{Objects: 4, Duration: 50 * time.Millisecond, SeqQD: 2, Seed: 1}
	if err := Prefill(ctx, s, cfg); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func() (Result, error){
		"randwrite": func() (Result, error) { return RandWrite(ctx, s, cfg, 4) },
		"randread":  func() (Result, error) { return RandRead(ctx, s, cfg, 4) },
		"seqwrite":  func() (Result, error) { return SeqWrite(ctx, s, cfg) },
		"create":    func() (Result, error) { return CreateSmall(ctx, s, cfg, 4) },
		"rawdev": func() (Result, error) {
			return RawDevice(ctx, dev, fio.Job{Name: "raw", RW: "randread", BlockSize: 4096, QueueDepth: 2, Runtime: cfg.Duration}, 16<<20)
		},
	} {
		r, err := f()
		if err != nil || r.Ops == 0 {
			t.Fatalf("%s: %+v, %v", name, r, err)
		}
	}
	rep, err := s.Fsck(ctx, true)
	if err != nil || !rep.OK() {
		t.Fatalf("fsck after workloads: %+v, %v", rep, err)
	}
}
