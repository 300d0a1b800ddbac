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
	"github.com/cobaltstore/cobalt/storage-engine/metafs"
	"github.com/cockroachdb/pebble/v2"
)

// wipeSize is how much of the device start mkfs zeroes, erasing other signatures (btrfs keeps one
// at 64 KiB).
const wipeSize = 256 << 10

// minSeparateMetaRegion is the smallest metadata region Mkfs makes on a separate metadata device.
const minSeparateMetaRegion = 8 << 20

// Mkfs formats dev as a new store and returns the store UUID. With an empty dbDir the metadata
// goes in a region of dev itself (opts.MetadataSize, between the label and the data space), or of
// opts.MetadataDevice when set, and the store mounts from its devices alone; otherwise it goes in
// the host directory dbDir. It refuses (ErrForeignSignature, naming what it found) a device that
// carries a filesystem, partition table or another store, and a dbDir that already holds a store,
// unless opts.Force is set.
//
// Order: the device starts are wiped, the metadata is written and synced, and the labels come
// last (the metadata device's, then the data device's), so a data device only carries a Cobalt
// label once its metadata exists. A crash before the data device's label leaves a metadata
// device that names a store no device carries: mkfs with Force formats it again.
func Mkfs(ctx context.Context, dev blockdev.Device, dbDir string, opts MkfsOptions) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	opts, err := opts.withDefaults(dev.BlockSize())
	if err != nil {
		return "", fmt.Errorf("mkfs: %w", err)
	}
	metaDev := opts.MetadataDevice
	if metaDev != nil && dbDir != "" {
		return "", fmt.Errorf("mkfs: a metadata device and a metadata directory %s: choose one: %w", dbDir, ErrInvalid)
	}
	if err := checkSignature(dev, "device", opts.Force); err != nil {
		return "", err
	}
	if metaDev != nil {
		if err := checkSignature(metaDev, "metadata device", opts.Force); err != nil {
			return "", err
		}
	}
	unit := uint64(opts.MinAllocSize)
	size := alignDown(uint64(dev.Size()), unit)
	dataStart := alignUp(labelReserve, unit)
	var region metafs.Extent
	switch {
	case metaDev != nil:
		if region, err = separateMetaRegion(metaDev, opts.MetadataSize); err != nil {
			return "", fmt.Errorf("mkfs: %w", err)
		}
	case dbDir == "":
		metaSize := opts.MetadataSize
		if metaSize == 0 {
			metaSize = DefaultMetadataSize(dev.Size())
		}
		metaSize = alignDownInt(metaSize, metaUnit)
		start := int64(alignUp(labelReserve, max(unit, metaUnit)))
		if metaSize <= 0 || start+metaSize > int64(size) {
			return "", fmt.Errorf("mkfs: metadata region of %d bytes does not fit the %d-byte device: %w", metaSize, dev.Size(), ErrInvalid)
		}
		region = metafs.Extent{Offset: start, Length: metaSize}
		dataStart = alignUp(uint64(region.End()), unit)
	}
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

	if dbDir != "" {
		if err := prepareDBDir(opts, dbDir); err != nil {
			return "", err
		}
	}
	if err := wipeStart(dev); err != nil {
		return "", fmt.Errorf("mkfs: wipe device start: %w", err)
	}
	regionDev := dev
	if metaDev != nil {
		if err := wipeStart(metaDev); err != nil {
			return "", fmt.Errorf("mkfs: wipe metadata device start: %w", err)
		}
		regionDev = metaDev
	}
	sb := kv.Superblock{Format: FormatVersion, UUID: uuid, DeviceSize: size, MinAllocSize: unit, ChecksumBlockSize: uint64(opts.ChecksumBlockSize),
		DataStart: dataStart, NextNid: 1}
	if err := mkfsMetadata(regionDev, dbDir, region, id, opts, sb); err != nil {
		return "", fmt.Errorf("mkfs: %w", err)
	}
	created := time.Now()
	label := blockdev.Label{UUID: id, DeviceSize: int64(size), MinAllocSize: uint32(unit), BlockSize: uint32(dev.BlockSize()), Created: created,
		MetaOffset: region.Offset, MetaLength: region.Length, ClusterID: opts.ClusterID}
	if metaDev != nil {
		metaLabel := blockdev.Label{UUID: id, DeviceSize: alignDownInt(metaDev.Size(), metaUnit), MinAllocSize: uint32(metaUnit),
			BlockSize: uint32(metaDev.BlockSize()), Created: created, MetaOffset: region.Offset, MetaLength: region.Length,
			ClusterID: opts.ClusterID, MetadataDevice: true}
		if err := blockdev.WriteLabel(metaDev, metaLabel); err != nil {
			return "", fmt.Errorf("mkfs: metadata device: %w", err)
		}
		label.MetaOffset, label.MetaLength, label.MetaOnSeparateDevice = 0, 0, true
	}
	if err := blockdev.WriteLabel(dev, label); err != nil {
		return "", fmt.Errorf("mkfs: %w", err)
	}
	return uuid, nil
}

// checkSignature refuses, unless force, a device (what names it in the error) that carries a
// signature.
func checkSignature(dev blockdev.Device, what string, force bool) error {
	sig, err := blockdev.DetectSignature(dev)
	if err != nil {
		return fmt.Errorf("mkfs: %s: %w", what, err)
	}
	if !sig.IsZero() && !force {
		return fmt.Errorf("mkfs: %s has %s (use force to overwrite): %w", what, sig, ErrForeignSignature)
	}
	return nil
}

// separateMetaRegion is the metadata region on a separate metadata device: after its label area,
// size bytes (0: the rest of the device), in metafs units.
func separateMetaRegion(metaDev blockdev.Device, size int64) (metafs.Extent, error) {
	start := alignUpInt(labelReserve, metaUnit)
	end := alignDownInt(metaDev.Size(), metaUnit)
	if size == 0 {
		size = end - start
	}
	size = alignDownInt(size, metaUnit)
	if size < minSeparateMetaRegion || start+size > end {
		return metafs.Extent{}, fmt.Errorf("metadata region of %d bytes does not fit the %d-byte metadata device (it needs at least %d bytes after its label): %w",
			size, metaDev.Size(), minSeparateMetaRegion, ErrInvalid)
	}
	return metafs.Extent{Offset: start, Length: size}, nil
}

// wipeStart zeroes the start of dev, erasing other signatures (btrfs keeps one at 64 KiB).
func wipeStart(dev blockdev.Device) error {
	wipe := blockdev.AlignedBuffer(int(min(wipeSize, alignDown(uint64(dev.Size()), uint64(dev.BlockSize())))))
	_, err := dev.WriteAt(wipe, 0)
	return err
}

// mkfsMetadata creates the metadata database, in the region of dev (formatted first) or in
// dbDir, and writes the superblock and empty statistics into it, synced.
func mkfsMetadata(dev blockdev.Device, dbDir string, region metafs.Extent, id [16]byte, opts MkfsOptions, sb kv.Superblock) error {
	loc := metaLocation{dir: dbDir, vfs: opts.FS}
	if region.Length > 0 {
		mo := metaOptions(id, region.Length)
		if err := metafs.Format(dev, region, mo); err != nil {
			return fmt.Errorf("format metadata region: %w", err)
		}
		mfs, err := metafs.Mount(dev, region, mo)
		if err != nil {
			return fmt.Errorf("mount metadata region: %w", err)
		}
		loc = metaLocation{fs: mfs, dir: metaDBDir, vfs: mfs, region: region}
	}
	db, err := kv.Open(loc.dir, loc.kvOptions(kv.Options{}))
	if err != nil {
		return errors.Join(err, loc.close())
	}
	b := db.NewBatch()
	err = errors.Join(b.Set(kv.SuperKey(), sb.Encode(), nil), b.Set(kv.StatsKey(), (&kv.Stats{}).Encode(), nil))
	if err == nil {
		err = b.Commit(pebble.Sync)
	}
	err = errors.Join(err, b.Close(), db.Close(), loc.close())
	if err != nil {
		return fmt.Errorf("write superblock: %w", err)
	}
	return nil
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
