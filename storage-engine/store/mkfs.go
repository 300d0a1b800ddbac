package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/kv"
	"github.com/cockroachdb/pebble/v2"
)

// wipeSize is how much of the device start mkfs zeroes, erasing other signatures (btrfs keeps one
// at 64 KiB).
const wipeSize = 256 << 10

// Mkfs formats dev as a new store with its metadata in dbDir and returns the store UUID. It refuses
// (ErrForeignSignature, naming what it found) a device that carries a filesystem, partition table
// or another store, and a dbDir that already holds a store, unless opts.Force is set.
//
// Order: the metadata is written and synced first, the label last, so a device only carries a
// Cobalt label once its metadata exists.
func Mkfs(ctx context.Context, dev blockdev.Device, dbDir string, opts MkfsOptions) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	opts, err := opts.withDefaults(dev.BlockSize())
	if err != nil {
		return "", fmt.Errorf("mkfs: %w", err)
	}
	sig, err := blockdev.DetectSignature(dev)
	if err != nil {
		return "", fmt.Errorf("mkfs: %w", err)
	}
	if !sig.IsZero() && !opts.Force {
		return "", fmt.Errorf("mkfs: device has %s (use force to overwrite): %w", sig, ErrForeignSignature)
	}
	unit := uint64(opts.MinAllocSize)
	dataStart := alignUp(labelReserve, unit)
	size := alignDown(uint64(dev.Size()), unit)
	if size < dataStart+16*unit {
		return "", fmt.Errorf("mkfs: device of %d bytes is too small (need %d): %w", dev.Size(), dataStart+16*unit, ErrInvalid)
	}
	var id [16]byte
	if opts.UUID != "" {
		raw, err := hex.DecodeString(strings.ReplaceAll(opts.UUID, "-", ""))
		if err != nil || len(raw) != 16 {
			return "", fmt.Errorf("mkfs: uuid %q is not 16 hex bytes: %w", opts.UUID, ErrInvalid)
		}
		copy(id[:], raw)
	} else {
		_, _ = rand.Read(id[:])
		id[6] = id[6]&0x0f | 0x40 // version 4
		id[8] = id[8]&0x3f | 0x80 // RFC 4122 variant
	}
	uuid := blockdev.FormatUUID(id)

	if err := prepareDBDir(opts, dbDir); err != nil {
		return "", err
	}
	db, err := kv.Open(dbDir, kv.Options{FS: opts.FS})
	if err != nil {
		return "", fmt.Errorf("mkfs: %w", err)
	}
	sb := kv.Superblock{Format: FormatVersion, UUID: uuid, DeviceSize: size, MinAllocSize: unit, ChecksumBlockSize: uint64(opts.ChecksumBlockSize),
		DataStart: dataStart, NextNid: 1}
	b := db.NewBatch()
	err = errors.Join(b.Set(kv.SuperKey(), sb.Encode(), nil), b.Set(kv.StatsKey(), (&kv.Stats{}).Encode(), nil))
	if err == nil {
		err = b.Commit(pebble.Sync)
	}
	err = errors.Join(err, b.Close(), db.Close())
	if err != nil {
		return "", fmt.Errorf("mkfs: write superblock: %w", err)
	}
	wipe := blockdev.AlignedBuffer(int(min(wipeSize, alignDown(uint64(dev.Size()), uint64(dev.BlockSize())))))
	if _, err := dev.WriteAt(wipe, 0); err != nil {
		return "", fmt.Errorf("mkfs: wipe device start: %w", err)
	}
	label := blockdev.Label{UUID: id, DeviceSize: int64(size), MinAllocSize: uint32(unit), BlockSize: uint32(dev.BlockSize()), Created: time.Now()}
	if err := blockdev.WriteLabel(dev, label); err != nil {
		return "", fmt.Errorf("mkfs: %w", err)
	}
	return uuid, nil
}

// prepareDBDir refuses a dbDir that already holds data unless forced, in which case it empties it.
func prepareDBDir(opts MkfsOptions, dbDir string) error {
	names, err := opts.FS.List(dbDir)
	if err != nil || len(names) == 0 {
		return nil // absent or empty
	}
	if !opts.Force {
		return fmt.Errorf("mkfs: metadata directory %s is not empty (use force to overwrite): %w", dbDir, ErrExists)
	}
	if err := opts.FS.RemoveAll(dbDir); err != nil {
		return fmt.Errorf("mkfs: clear metadata directory %s: %w", dbDir, err)
	}
	return nil
}
