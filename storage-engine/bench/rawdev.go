package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/cobaltstore/cobalt/storage-engine/bench/fio"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
)

// RawDevice runs a workload of the same shape as a fio job directly on dev through blockdev (pread /
// pwrite from QD goroutines, no flush): what Go's I/O path reaches before the store adds anything.
// region bounds the offsets used.
func RawDevice(ctx context.Context, dev blockdev.Device, job fio.Job, region int64) (Result, error) {
	bufs := make([][]byte, job.QueueDepth)
	for i := range bufs {
		bufs[i] = blockdev.AlignedBuffer(job.BlockSize)
		for j := range bufs[i] {
			bufs[i][j] = byte(j)
		}
	}
	blocks := region / int64(job.BlockSize)
	lanes := blocks / int64(job.QueueDepth)
	pos := make([]int64, job.QueueDepth)
	write := strings.Contains(job.RW, "write")
	random := strings.HasPrefix(job.RW, "rand")
	return run(ctx, job.Name, job.QueueDepth, job.Runtime, int64(job.BlockSize), 9,
		func(_ context.Context, rng *rand.Rand, w int, _ int64) error {
			var blk int64
			if random {
				blk = rng.Int64N(blocks)
			} else {
				blk = int64(w)*lanes + pos[w]%lanes
				pos[w]++
			}
			off := blk * int64(job.BlockSize)
			var err error
			if write {
				_, err = dev.WriteAt(bufs[w], off)
			} else {
				_, err = dev.ReadAt(bufs[w], off)
			}
			if err != nil {
				return fmt.Errorf("%s at %d: %w", job.RW, off, err)
			}
			return nil
		})
}
