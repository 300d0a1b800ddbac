package bench

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/cobaltstore/cobalt/storage-engine/bench/fio"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/store"
)

// randReadJob is the baselines' 4 KiB random-read job at queue depth 16 over region bytes.
func randReadJob(region int64, d time.Duration) fio.Job {
	return fio.Job{Name: "randread-4k-qd16", RW: "randread", BlockSize: 4096, QueueDepth: 16, Size: region, Runtime: d}
}

// readRounds runs the random-read comparison o.Rounds-1 more times after the first (first: fio and
// go-dev from the baselines, the store's from its workload), alternating fio (if o.Fio), go-dev
// and the store within each round, and returns the row of the medians. Reads only, so fio and
// go-dev can run on the device while the store holds it: their region ([0, Objects × 4 MiB), the
// store's label and metadata region by then) is read, never written. On a shared machine, one run
// of each moves by a quarter from one minute to the next; the medians of rounds taken side by side
// are what the store/fio ratio should be read from.
func readRounds(ctx context.Context, o SuiteOptions, dev blockdev.Device, s *store.Store, first Row) (Row, error) {
	job := randReadJob(int64(o.Objects)*objectSize, o.Duration)
	var fios, raws, stores []Result
	if o.Fio {
		fios = append(fios, first.Fio)
	}
	raws, stores = append(raws, first.Raw), append(stores, first.Store)
	for round := 2; round <= o.Rounds; round++ {
		line := fmt.Sprintf("round %d/%d %s:", round, o.Rounds, job.Name)
		if o.Fio {
			fr, err := fio.Run(ctx, "", o.DevicePath, job)
			if err != nil {
				return first, err
			}
			fios = append(fios, fromFio(fr))
			line += fmt.Sprintf(" fio %.0f", fromFio(fr).IOPS())
		}
		r, err := RawDevice(ctx, dev, job, job.Size)
		if err != nil {
			return first, err
		}
		raws = append(raws, r)
		if r, err = RandRead(ctx, s, o.Config, 16); err != nil {
			return first, err
		}
		stores = append(stores, r)
		o.logf("%s go-dev %.0f, store %.0f IOPS (%v CPU/op)", line, raws[len(raws)-1].IOPS(), r.IOPS(), r.CPUPerOp().Round(100*time.Nanosecond))
	}
	row := first
	row.Store, row.Raw = median(stores), median(raws)
	if o.Fio {
		row.Fio = median(fios)
	}
	o.logf("median of %d rounds %s: fio %.0f, go-dev %.0f, store %.0f IOPS", o.Rounds, job.Name, row.Fio.IOPS(), row.Raw.IOPS(), row.Store.IOPS())
	return row, nil
}

// median returns the result with the median IOPS (the lower one of the middle two for an even
// count); rs must not be empty.
func median(rs []Result) Result {
	sorted := slices.Clone(rs)
	slices.SortStableFunc(sorted, func(a, b Result) int {
		switch ia, ib := a.IOPS(), b.IOPS(); {
		case ia < ib:
			return -1
		case ia > ib:
			return 1
		}
		return 0
	})
	return sorted[(len(sorted)-1)/2]
}
