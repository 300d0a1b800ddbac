package bench

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/store"
	"github.com/cockroachdb/pebble/v2/vfs"
)

const fioJSON = `{"jobs":[{"jobname":"randwrite-4k-qd16",
 "read":{"io_bytes":0,"total_ios":0,"runtime":0,"iops":0,"clat_ns":{"percentile":{}}},
 "write":{"io_bytes":409600,"total_ios":100,"runtime":50,"iops":2000,
   "clat_ns":{"percentile":{"50.000000":150000,"99.000000":900000}}}}]}`

func TestParseFio(t *testing.T) {
	r, err := parseFio("randwrite-4k-qd16", "randwrite", []byte(fioJSON))
	if err != nil {
		t.Fatal(err)
	}
	if r.Ops != 100 || r.Bytes != 409600 || r.Elapsed != 50*time.Millisecond || r.P50 != 150*time.Microsecond || r.P99 != 900*time.Microsecond {
		t.Fatalf("parsed %+v", r)
	}
	if r.IOPS() != 2000 {
		t.Fatalf("IOPS %v", r.IOPS())
	}
	if _, err := parseFio("x", "randread", []byte(fioJSON)); err == nil {
		t.Fatal("a job without reads parsed as a read result")
	}
	if _, err := parseFio("x", "randwrite", []byte("{")); err == nil {
		t.Fatal("bad JSON accepted")
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
			return RawDevice(ctx, dev, FioJob{Name: "raw", RW: "randread", BlockSize: 4096, QD: 2, Duration: cfg.Duration}, 16<<20)
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
