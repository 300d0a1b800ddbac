package bench

import (
	"context"
	"errors"
	"fmt"

	"github.com/cobaltstore/cobalt/storage-engine/bench/fio"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
)

// prefillChunk is the 1 MiB buffer the store's objects are prefilled with (Prefill) and the raw
// baselines' region is preconditioned with (Precondition): the two read the same bytes.
func prefillChunk() []byte {
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i*31 + 7)
	}
	return buf
}

// needsPrecondition reports whether the baseline jobs read a region that none of them writes
// first: the random reads without the sequential write before them (a run of -workloads randread).
// A region that was never written is a hole of the loop device's sparse file (or an unmapped range
// of a thin or flash device), which reads without reaching the disk: fio measured about 100k 4 KiB
// reads per second at QD16 from a hole of a loop device on the development machine, and 45-65k from
// written blocks of the same device, while the store always reads the blocks its prefill wrote.
func needsPrecondition(jobs []fio.Job) bool {
	for _, j := range jobs {
		switch j.RW {
		case "write":
			return false
		case "read", "randread":
			return true
		}
	}
	return false
}

// Precondition writes the first region bytes of dev sequentially, 1 MiB at a time, with the bytes
// the store's objects are prefilled with, and flushes it, so that reads of the region reach
// written blocks, as the store's reads do.
func Precondition(ctx context.Context, dev blockdev.Device, region int64) error {
	buf := prefillChunk()
	aligned := blockdev.AlignedBuffer(len(buf))
	copy(aligned, buf)
	for off := int64(0); off < region; off += int64(len(aligned)) {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := aligned[:min(int64(len(aligned)), region-off)]
		if _, err := dev.WriteAt(p, off); err != nil {
			return fmt.Errorf("precondition %d bytes: %w", region, err)
		}
	}
	if err := dev.Flush(); err != nil {
		return fmt.Errorf("precondition %d bytes: %w", region, err)
	}
	return nil
}

// preconditionPath opens the device at path, preconditions region bytes of it and closes it.
func preconditionPath(ctx context.Context, path string, region int64) error {
	dev, err := blockdev.Open(path, blockdev.Options{})
	if err != nil {
		return err
	}
	return errors.Join(Precondition(ctx, dev, region), dev.Close())
}
