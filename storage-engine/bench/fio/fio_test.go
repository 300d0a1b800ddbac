package fio_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cobaltstore/cobalt/storage-engine/bench/fio"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev/blockdevtest"
)

func readSample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseJSONSingleJob(t *testing.T) {
	got, err := fio.ParseJSON(readSample(t, "fio-3.33-randwrite-4k-qd16.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := []fio.Result{{
		Name: "randwrite-4k-qd16", IOPS: 29073.463268, BytesPerSec: 119084905,
		LatP50: 346112, LatP90: 782336, LatP99: 3948544, LatP999: 10289152,
		Runtime: 2001 * time.Millisecond, IOs: got[0].IOs, LatMean: got[0].LatMean,
	}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	if got[0].IOs < 50000 || got[0].LatMean <= 0 || got[0].LatMean > time.Millisecond*10 {
		t.Fatalf("IOs %d mean %v implausible for this sample", got[0].IOs, got[0].LatMean)
	}
	if mb := got[0].MBPerSec(); mb < 119.08 || mb > 119.09 {
		t.Fatalf("MBPerSec %v", mb)
	}
}

func TestParseJSONTwoJobsReadAndWrite(t *testing.T) {
	got, err := fio.ParseJSON(readSample(t, "fio-3.33-two-jobs.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d results", len(got))
	}
	w, r := got[0], got[1]
	if w.Name != "write-1m-qd4" || w.IOPS != 735.632184 || w.BytesPerSec != 771366252 || w.LatP50 != 2998272 || w.LatP999 != 32112640 {
		t.Fatalf("write job: %+v", w)
	}
	if r.Name != "randread-4k-qd1" || r.IOPS != 17915.084915 || r.LatP50 != 47360 || r.LatP99 != 110080 {
		t.Fatalf("read job: %+v", r)
	}
}

// TestParseJSONDurableFloor parses a real durable-floor run (4 processes of psync pwrite +
// fdatasync on a file of an ext4 file system, reported as one group).
func TestParseJSONDurableFloor(t *testing.T) {
	got, err := fio.ParseJSON(readSample(t, "fio-3.33-randwrite-4k-fdatasync-4j.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("%d results, want one group", len(got))
	}
	r := got[0]
	want := fio.Result{
		Name: "randwrite-4k-fdatasync-4j", IOPS: 5816.367265, BytesPerSec: 23823840, IOs: 5828,
		LatP50: 125440, LatP90: 333824, LatP99: 1613824, LatP999: 4685824, LatMean: r.LatMean,
		Syncs: 5825, SyncLatMean: 473127, SyncLatP50: 358400, SyncLatP99: 3063808,
		Runtime: 1002 * time.Millisecond,
	}
	if r != want {
		t.Fatalf("got  %+v\nwant %+v", r, want)
	}
	// A job without syncs reports none.
	plain, err := fio.ParseJSON(readSample(t, "fio-3.33-randwrite-4k-qd16.json"))
	if err != nil {
		t.Fatal(err)
	}
	if plain[0].Syncs != 0 || plain[0].SyncLatP50 != 0 {
		t.Fatalf("job without fsync reports syncs: %+v", plain[0])
	}
}

// TestDurableFloorArgsMatchSample checks that DurableFloor builds exactly the job options of the
// fio run the durable-floor sample came from (fio echoes them in its JSON output).
func TestDurableFloorArgsMatchSample(t *testing.T) {
	var out struct {
		Jobs []struct {
			Options map[string]string `json:"job options"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal(readSample(t, "fio-3.33-randwrite-4k-fdatasync-4j.json"), &out); err != nil {
		t.Fatal(err)
	}
	job := fio.DurableFloor(4, 16<<20, time.Second)
	args, err := job.Args("/tmp/fioflr.img")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, a := range args {
		k, v, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !ok {
			t.Fatalf("argument %q is not --key=value", a)
		}
		if k != "output-format" { // not a job option
			got[k] = v
		}
	}
	if want := out.Jobs[0].Options; !maps.Equal(got, want) {
		t.Fatalf("DurableFloor(4) options\n got  %v\n want %v", got, want)
	}
	for jobs, want := range map[int][]string{
		1:  {"--numjobs=1", "--ioengine=psync", "--fdatasync=1", "--iodepth=1", "--direct=1"},
		16: {"--numjobs=16", "--group_reporting=1", "--ioengine=psync", "--fdatasync=1", "--iodepth=1"},
	} {
		j := fio.DurableFloor(jobs, 1<<30, 5*time.Second)
		args, err := j.Args("/dev/loop9")
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range want {
			if !slices.Contains(args, a) {
				t.Errorf("DurableFloor(%d) args %v lack %s", jobs, args, a)
			}
		}
		if jobs == 1 && slices.Contains(args, "--group_reporting=1") {
			t.Errorf("DurableFloor(1) asks for group reporting: %v", args)
		}
		if j.Name != fmt.Sprintf("randwrite-4k-fdatasync-%dj", jobs) {
			t.Errorf("DurableFloor(%d) named %s", jobs, j.Name)
		}
	}
}

// TestSeqDurableFloor checks the sequential durable floor's options (each process its own slice
// of whole MiBs) and, where fio is installed, runs it briefly on a file.
func TestSeqDurableFloor(t *testing.T) {
	j := fio.SeqDurableFloor(4, 64<<20+4096, time.Second)
	args, err := j.Args("/dev/loop9")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"--numjobs=4", "--group_reporting=1", "--ioengine=psync", "--fdatasync=1", "--iodepth=1", "--rw=write",
		"--bs=1048576", "--size=16777216", "--offset_increment=16777216", "--time_based=1"} {
		if !slices.Contains(args, a) {
			t.Errorf("SeqDurableFloor(4) args %v lack %s", args, a)
		}
	}
	if j.Name != "seqwrite-1m-fdatasync-4j" {
		t.Errorf("SeqDurableFloor(4) named %s", j.Name)
	}
	if _, err := fio.SeqDurableFloor(16, 8<<20, time.Second).Args("/dev/loop9"); err == nil {
		t.Error("a region smaller than a MiB per process was accepted")
	}
	path, err := exec.LookPath("fio")
	if err != nil {
		t.Skip("fio not installed; `make bench` installs it")
	}
	img := filepath.Join(t.TempDir(), "fio.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	r, err := fio.Run(context.Background(), path, img, fio.SeqDurableFloor(4, 64<<20, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if r.IOPS <= 0 || r.SyncLatP50 <= 0 {
		t.Fatalf("implausible result (no writes or no fdatasync latencies): %+v", r)
	}
	t.Logf("%.0f IOPS, write p50 %v, fdatasync p50 %v", r.IOPS, r.LatP50, r.SyncLatP50)
}

func TestParseJSONErrors(t *testing.T) {
	sample := string(readSample(t, "fio-3.33-randwrite-4k-qd16.json"))
	cases := map[string]string{
		"garbage":        "not json",
		"empty":          "",
		"no-jobs":        `{"fio version": "fio-3.33", "jobs": []}`,
		"job-error":      strings.Replace(sample, `"error" : 0`, `"error" : 5`, 1),
		"no-io":          `{"jobs": [{"jobname": "x", "error": 0, "read": {"io_bytes": 0}, "write": {"io_bytes": 0}}]}`,
		"no-percentiles": `{"jobs": [{"jobname": "x", "error": 0, "write": {"io_bytes": 4096, "iops": 1, "lat_ns": {"mean": 5}}}]}`,
		"syncs-without-percentiles": `{"jobs": [{"jobname": "x", "error": 0, "write": {"io_bytes": 4096, "iops": 1, "lat_ns": {"mean": 5, ` +
			`"percentile": {"50.000000": 1, "90.000000": 1, "99.000000": 1, "99.900000": 1}}}, "sync": {"lat_ns": {"N": 3, "mean": 7}}}]}`,
	}
	for name, in := range cases {
		if _, err := fio.ParseJSON([]byte(in)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	if !strings.Contains(sample, `"error" : 0`) {
		t.Fatal("sample format changed: the job-error case no longer tests anything")
	}
	// A warning line before the JSON is tolerated.
	if _, err := fio.ParseJSON([]byte("fio: some warning\n" + sample)); err != nil {
		t.Fatalf("leading warning: %v", err)
	}
}

func TestArgs(t *testing.T) {
	jobs := fio.StandardJobs(1<<30, 10*time.Second)
	names := make([]string, len(jobs))
	for i, j := range jobs {
		names[i] = j.Name
	}
	if !slices.Equal(names, []string{"seqwrite-1m-qd1", "randwrite-4k-qd1", "randwrite-4k-qd16", "randread-4k-qd1", "randread-4k-qd16"}) {
		t.Fatalf("standard jobs %v", names)
	}
	args, err := jobs[2].Args("/dev/loop9")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--filename=/dev/loop9", "--rw=randwrite", "--bs=4096", "--iodepth=16", "--direct=1",
		"--ioengine=libaio", "--size=1073741824", "--time_based=1", "--runtime=10", "--output-format=json", "--lat_percentiles=1"} {
		if !slices.Contains(args, want) {
			t.Errorf("args %v lack %s", args, want)
		}
	}
	if args, _ := jobs[0].Args("/x"); slices.Contains(args, "--time_based=1") {
		t.Error("sequential fill job must be size based")
	}
	if slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--fsync") }) {
		t.Errorf("args %v: a job without FsyncEvery asks for fsyncs", args)
	}
	synced := jobs[2]
	synced.FsyncEvery = 32
	if args, _ := synced.Args("/x"); !slices.Contains(args, "--fsync=32") {
		t.Errorf("args %v lack --fsync=32", args)
	}
	for _, bad := range []fio.Job{
		{Name: "", RW: "write", BlockSize: 4096, QueueDepth: 1, Size: 4096},
		{Name: "a b", RW: "write", BlockSize: 4096, QueueDepth: 1, Size: 4096},
		{Name: "x", RW: "trim", BlockSize: 4096, QueueDepth: 1, Size: 4096},
		{Name: "x", RW: "write", BlockSize: 100, QueueDepth: 1, Size: 4096},
		{Name: "x", RW: "write", BlockSize: 4096, QueueDepth: 0, Size: 4096},
		{Name: "x", RW: "write", BlockSize: 4096, QueueDepth: 1, Size: 100},
		{Name: "x", RW: "write", BlockSize: 4096, QueueDepth: 1, Size: 4096, Runtime: -1},
		{Name: "x", RW: "write", BlockSize: 4096, QueueDepth: 1, Size: 4096, FsyncEvery: -1},
		{Name: "x", RW: "write", BlockSize: 4096, QueueDepth: 1, Size: 4096, FdatasyncEvery: -1},
		{Name: "x", RW: "write", BlockSize: 4096, QueueDepth: 1, Size: 4096, Jobs: -1},
		{Name: "x", RW: "write", BlockSize: 4096, QueueDepth: 1, Size: 4096, Engine: "io_uring"},
		{Name: "x", RW: "write", BlockSize: 4096, QueueDepth: 16, Size: 4096, Engine: "psync"},
	} {
		if _, err := bad.Args("/x"); err == nil {
			t.Errorf("job %+v accepted", bad)
		}
	}
}

func TestWriteTable(t *testing.T) {
	var sb strings.Builder
	rows := []fio.Row{{
		Workload: "randwrite-4k-qd16",
		Engine:   fio.Result{IOPS: 7000, BytesPerSec: 28.672e6, LatP50: 2 * time.Millisecond, LatP99: 5 * time.Millisecond},
		Raw:      fio.Result{IOPS: 10000, BytesPerSec: 40.96e6, LatP50: time.Millisecond, LatP99: 3 * time.Millisecond},
	}}
	if err := fio.WriteTable(&sb, rows); err != nil {
		t.Fatal(err)
	}
	out := sb.String()
	for _, want := range []string{"randwrite-4k-qd16", "7000", "10000", "0.70", "28.7", "41.0", "2ms", "3ms"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if (fio.Row{}).IOPSRatio() != 0 || (fio.Row{}).BandwidthRatio() != 0 {
		t.Error("ratio with zero raw figures must be 0")
	}
}

func TestRunMissingBinary(t *testing.T) {
	job := fio.StandardJobs(1<<20, time.Second)[1]
	_, err := fio.Run(context.Background(), filepath.Join(t.TempDir(), "no-fio"), "/dev/null", job)
	if err == nil || !strings.Contains(err.Error(), "randwrite-4k-qd1") {
		t.Fatalf("Run with a missing binary: %v", err)
	}
	t.Setenv("PATH", t.TempDir())
	if _, err := fio.Run(context.Background(), "", "/dev/null", job); !errors.Is(err, fio.ErrNotInstalled) {
		t.Fatalf("Run without fio in PATH: %v, want ErrNotInstalled", err)
	}
}

// TestRunAgainstFileAndLoop runs one short job with the real fio when it is installed (`make bench`
// installs it; `make test` does not), on a file and, as root, on a loop device.
func TestRunAgainstFileAndLoop(t *testing.T) {
	path, err := exec.LookPath("fio")
	if err != nil {
		t.Skip("fio not installed; `make bench` installs it and runs the raw-device comparison")
	}
	job := fio.Job{Name: "randwrite-4k-qd4", RW: "randwrite", BlockSize: 4096, QueueDepth: 4, Size: 16 << 20, Runtime: time.Second}
	targets := map[string]func(t *testing.T) string{
		"file": func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "fio.img")
			if err := os.WriteFile(p, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(p, 16<<20); err != nil {
				t.Fatal(err)
			}
			return p
		},
		"loop": func(t *testing.T) string { return blockdevtest.LoopDevice(t, 16<<20) },
	}
	for name, target := range targets {
		t.Run(name, func(t *testing.T) {
			r, err := fio.Run(context.Background(), path, target(t), job)
			if err != nil {
				t.Fatal(err)
			}
			if r.Name != job.Name || r.IOPS <= 0 || r.IOs <= 0 || r.LatP50 <= 0 || r.LatP99 < r.LatP50 {
				t.Fatalf("implausible result %+v", r)
			}
			t.Logf("%s: %.0f IOPS, %.1f MB/s, p50 %v, p99 %v", name, r.IOPS, r.MBPerSec(), r.LatP50, r.LatP99)
		})
	}
}
