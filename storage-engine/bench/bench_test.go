package bench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cobaltstore/cobalt/storage-engine/bench/fio"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/metafs"
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
	if err := Print(&buf, Report{Metadata: "state dir (host fs, ext4): /x", Rows: rows}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "50%") || !strings.Contains(buf.String(), "metadata: state dir (host fs, ext4): /x\n") {
		t.Fatalf("table has no store/fio ratio or metadata line:\n%s", buf.String())
	}
	if strings.Contains(buf.String(), "durable floor") {
		t.Fatalf("floor table printed without floors:\n%s", buf.String())
	}
}

// TestPrintFloor checks the durable-floor table: the store's ratio to the floor and to raw fio
// at QD16 and QD128, its CPU per operation, and "-" where fio was not run.
func TestPrintFloor(t *testing.T) {
	sec := time.Second
	rep := Report{
		Metadata: "state dir (host fs, ext4): /x",
		Rows: []Row{
			{Store: Result{Name: "seqwrite-1m-qd16", Ops: 1500, Elapsed: sec, CPU: 900 * time.Millisecond},
				Floor: fio.Result{Name: "seqwrite-1m-fdatasync-16j", IOPS: 1000, IOs: 1000, LatP50: 6 * time.Millisecond, SyncLatP50: 2 * time.Millisecond}, FloorJobs: 16},
			{Store: Result{Name: "randwrite-4k-qd1", Ops: 2000, Elapsed: sec, CPU: 200 * time.Millisecond},
				Floor: fio.Result{Name: "randwrite-4k-fdatasync-1j", IOPS: 4000, IOs: 4000, LatP50: 60 * time.Microsecond, SyncLatP50: 180 * time.Microsecond}, FloorJobs: 1},
			{Store: Result{Name: "randwrite-4k-qd16", Ops: 24000, Elapsed: sec, CPU: 960 * time.Millisecond},
				Floor: fio.Result{Name: "randwrite-4k-fdatasync-16j", IOPS: 16000, IOs: 16000}, FloorJobs: 16},
			{Store: Result{Name: "randread-4k-qd16", Ops: 5, Elapsed: sec}},
		},
		Fio: map[string]Result{
			"randwrite-4k-qd16":  {Ops: 60000, Elapsed: sec},
			"randwrite-4k-qd128": {Ops: 96000, Elapsed: sec},
		},
	}
	var buf bytes.Buffer
	if err := Print(&buf, rep); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	_, floor, ok := strings.Cut(out, "durable floor")
	if !ok {
		t.Fatalf("no floor table:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(floor), "\n")
	if len(lines) != 5 { // title, header, three floor rows (not the read)
		t.Fatalf("floor table has %d lines, want 5:\n%s", len(lines), floor)
	}
	// The sequential row has its floor, and no raw 4 KiB random-write reference.
	seq := strings.Fields(lines[2])
	if want := []string{"seqwrite-1m-qd16", "1500", "600µs", "16", "1000", "6000µs", "2000µs", "1.50×", "-", "-", "-", "-"}; !slices.Equal(seq, want) {
		t.Errorf("sequential floor row %q, want the fields %q", lines[2], want)
	}
	lines = append(lines[:2], lines[3:]...)
	for i, want := range [][]string{
		{"randwrite-4k-qd1 ", "2000", "100µs", " 1 ", "4000", "60µs", "180µs", "0.50×", "60000", "3%", "96000", "2%"},
		{"randwrite-4k-qd16 ", "24000", "40µs", " 16 ", "16000", "1.50×", "40%", "25%"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[2+i], w) {
				t.Errorf("floor row %q lacks %q", lines[2+i], w)
			}
		}
	}
	// Without raw fio results, the fio columns of the floor table are "-".
	rep.Fio = nil
	buf.Reset()
	if err := Print(&buf, rep); err != nil {
		t.Fatal(err)
	}
	if _, floor, _ := strings.Cut(buf.String(), "durable floor"); strings.Count(floor, " - ") < 4 {
		t.Fatalf("floor table without fio results:\n%s", floor)
	}
}

func TestGroupPhases(t *testing.T) {
	if got := GroupPhases(store.Metrics{CommitGroups: 7}, store.Metrics{CommitGroups: 7}); got != "" {
		t.Fatalf("no new groups: %q", got)
	}
	before := store.Metrics{CommitGroups: 10, Commits: 20,
		CommitLatency: store.LatencySummary{Count: 20, Mean: time.Millisecond},
		DataLatency:   store.LatencySummary{Count: 10, Mean: 500 * time.Microsecond},
		KVSyncLatency: store.LatencySummary{Count: 10, Mean: 2 * time.Millisecond}}
	// 10 more groups of 4 txns: data+flush averages 700µs over all 20, so 900µs over the new 10.
	after := store.Metrics{CommitGroups: 20, Commits: 60,
		CommitLatency: store.LatencySummary{Count: 60, Mean: 1500 * time.Microsecond},
		StageLatency:  store.LatencySummary{Count: 10, Mean: 30 * time.Microsecond},
		DataLatency:   store.LatencySummary{Count: 20, Mean: 700 * time.Microsecond},
		KVSyncLatency: store.LatencySummary{Count: 20, Mean: 1500 * time.Microsecond}}
	got := GroupPhases(before, after)
	for _, want := range []string{"10 commit groups", "4.0 txns/group", "commit 1.75ms/txn", "stage 30µs", "data+flush 900µs", "publish 0s", "kv sync wait 1ms"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
	if strings.Contains(got, "metadata syncs") {
		t.Errorf("%q speaks of metadata syncs, with none counted", got)
	}
	// 12 more metadata syncs, 2 of them journaled: the means are over those only.
	before.MetaSync = metafs.SyncStats{Syncs: 8, Write: 800 * time.Microsecond, Flush: 2 * time.Millisecond, Journaled: 1, Journal: 300 * time.Microsecond}
	after.MetaSync = metafs.SyncStats{Syncs: 20, Write: 3200 * time.Microsecond, Flush: 5600 * time.Microsecond, Journaled: 3, Journal: 900 * time.Microsecond}
	got = GroupPhases(before, after)
	if want := "; 12 metadata syncs, each write 200µs + flush 300µs (2 also journaled, 300µs each)"; !strings.HasSuffix(got, want) {
		t.Errorf("%q does not end with %q", got, want)
	}
	after.MetaSync.Journaled = before.MetaSync.Journaled
	if got := GroupPhases(before, after); strings.Contains(got, "journaled") {
		t.Errorf("%q speaks of journaled syncs, with none new", got)
	}
}

func TestMetadataLocation(t *testing.T) {
	dir := t.TempDir()
	got := MetadataLocation(dir)
	if !strings.HasPrefix(got, "state dir (host fs, ") || !strings.HasSuffix(got, "): "+dir) {
		t.Fatalf("MetadataLocation(%s) = %q", dir, got)
	}
	if strings.Contains(got, "host fs, )") {
		t.Fatalf("no file system type: %q", got)
	}
	missing := filepath.Join(dir, "missing")
	if got := MetadataLocation(missing); got != "state dir (host fs): "+missing {
		t.Fatalf("MetadataLocation of a missing dir = %q", got)
	}
	if fsName(0xEF53) != "ext4" || fsName(0x1234) != "type 0x1234" {
		t.Fatalf("fsName: %q %q", fsName(0xEF53), fsName(0x1234))
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

func TestParseLayouts(t *testing.T) {
	for in, want := range map[string][]Layout{
		"device":           {MetadataOnDevice},
		"dir":              {MetadataInDir},
		"device,dir":       {MetadataOnDevice, MetadataInDir},
		"dir, device, dir": {MetadataInDir, MetadataOnDevice},
		"device,metadev":   {MetadataOnDevice, MetadataOnSeparateDevice},
	} {
		if got, err := ParseLayouts(in); err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseLayouts(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "disk", "device,"} {
		if _, err := ParseLayouts(in); err == nil {
			t.Errorf("ParseLayouts(%q) accepted", in)
		}
	}
}

// sparseDevice makes a sparse file device of size bytes in a test directory and returns the
// directory and the file's path.
func sparseDevice(t *testing.T, size int64) (dir, path string) {
	t.Helper()
	dir = t.TempDir()
	path = filepath.Join(dir, "dev.img")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
	return dir, path
}

// TestRunSuiteLayouts runs one short store workload on a file device in the three metadata
// layouts: one report each, in order, each naming where its metadata was.
func TestRunSuiteLayouts(t *testing.T) {
	dir, path := sparseDevice(t, 256<<20)
	_, metaPath := sparseDevice(t, 64<<20)
	o := SuiteOptions{Config: Config{Objects: 2, Duration: 50 * time.Millisecond, SeqQD: 2, Seed: 1}, DevicePath: path,
		Layouts: []Layout{MetadataOnDevice, MetadataInDir, MetadataOnSeparateDevice}, DBDir: filepath.Join(dir, "db"), MetaDevicePath: metaPath,
		Workloads: []string{"create-small"}}
	reps, err := RunSuite(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 3 {
		t.Fatalf("%d reports, want one per layout", len(reps))
	}
	for i, prefix := range []string{"device (metafs on the benchmarked device): device region [", "state dir (host fs, ",
		"metadata device (metafs on " + metaPath + "): metadata device region ["} {
		if !strings.HasPrefix(reps[i].Metadata, prefix) || len(reps[i].Rows) != 1 || reps[i].Rows[0].Store.Ops == 0 {
			t.Errorf("report %d: metadata %q, rows %+v; want the metadata to start %q and one row", i, reps[i].Metadata, reps[i].Rows, prefix)
		}
	}
	o.Layouts, o.DBDir = []Layout{MetadataInDir}, ""
	if _, err := RunSuite(context.Background(), o); err == nil {
		t.Error("the dir layout ran without a metadata directory")
	}
	o.Layouts, o.MetaDevicePath = []Layout{MetadataOnSeparateDevice}, ""
	if _, err := RunSuite(context.Background(), o); err == nil {
		t.Error("the metadev layout ran without a metadata device")
	}
}

// TestPrecondition checks that the baselines' region is written before reads that no job writes
// first, with the bytes the store's objects hold, and only then.
func TestPrecondition(t *testing.T) {
	read := fio.Job{Name: "randread-4k-qd16", RW: "randread"}
	for _, c := range []struct {
		jobs []fio.Job
		want bool
	}{
		{[]fio.Job{read}, true},
		{[]fio.Job{{RW: "randwrite"}, read}, true},
		{[]fio.Job{{RW: "write"}, {RW: "randwrite"}, read}, false},
		{[]fio.Job{{RW: "randwrite"}}, false},
		{nil, false},
	} {
		if got := needsPrecondition(c.jobs); got != c.want {
			t.Errorf("needsPrecondition(%+v) = %v, want %v", c.jobs, got, c.want)
		}
	}
	dev := blockdev.NewMem(8<<20, 4096)
	const region = 3<<20 + 8192 // not a whole number of chunks: the tail is written too
	if err := Precondition(context.Background(), dev, region); err != nil {
		t.Fatal(err)
	}
	chunk := prefillChunk()
	got := blockdev.AlignedBuffer(region + 4096)
	if _, err := dev.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	for off := 0; off < region; off += len(chunk) {
		n := min(len(chunk), region-off)
		if !bytes.Equal(got[off:off+n], chunk[:n]) {
			t.Fatalf("region at %d does not hold the prefill bytes", off)
		}
	}
	if !bytes.Equal(got[region:], make([]byte, 4096)) {
		t.Fatal("Precondition wrote past the region")
	}
}

func TestMedian(t *testing.T) {
	r := func(ops int64) Result { return Result{Ops: ops, Elapsed: time.Second} }
	for _, c := range []struct {
		in   []Result
		want int64
	}{
		{[]Result{r(5)}, 5},
		{[]Result{r(9), r(1), r(5)}, 5},
		{[]Result{r(4), r(8), r(2), r(6)}, 4},
	} {
		if got := median(c.in); got.Ops != c.want {
			t.Errorf("median of %v = %d ops, want %d", c.in, got.Ops, c.want)
		}
	}
}

// TestRunSuiteReadRounds runs the random reads in three rounds on a file device: the go-dev
// baseline reads the preconditioned region, the store's row is the median of its rounds, and
// every round is logged.
func TestRunSuiteReadRounds(t *testing.T) {
	_, path := sparseDevice(t, 256<<20)
	var log bytes.Buffer
	o := SuiteOptions{Config: Config{Objects: 2, Duration: 50 * time.Millisecond, SeqQD: 2, Seed: 1}, DevicePath: path,
		Workloads: []string{"randread"}, Rounds: 3, Log: &log}
	reps, err := RunSuite(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 1 || len(reps[0].Rows) != 1 || reps[0].Rows[0].Store.Ops == 0 || reps[0].Rows[0].Raw.Ops == 0 {
		t.Fatalf("reports %+v, want one random-read row with store and go-dev results", reps)
	}
	for _, want := range []string{"preconditioned 8 MiB", "round 2/3 randread-4k-qd16:", "round 3/3 randread-4k-qd16:", "median of 3 rounds"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
}
