package store

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/kv"
	"github.com/cobaltstore/cobalt/storage-engine/metafs"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Where the metadata database lives. A store made with an empty dbDir keeps it in a region of its
// own device, between the label and the data space, through storage-engine/metafs (label version
// 2 records the region): it mounts from the device alone. A store made with a separate metadata
// device (MkfsOptions.MetadataDevice, a faster device as BlueStore's block.db) keeps it in a region
// of that device, whose own label (version 4, LabelFlagMetadataDevice) carries the store's UUID
// and the region, while the data device's label says the metadata is elsewhere: it mounts from
// the two devices alone, and Open refuses a data device without its metadata device, or with a
// device that is not that store's. The metadata then never grows into the data device (the two
// devices are flushed separately, and a metadata region split across them would need both to
// mount): a full metadata device refuses transactions with ErrNoSpace. A store made with a dbDir
// keeps it in that directory of the host, as every store before label version 2 did; such stores
// still mount.

// metaDBDir is the database's directory inside the metadata region's file system.
const metaDBDir = "/db"

// Metadata region sizing: a sixteenth of the device, at least 64 MiB (or a quarter of a device
// too small for that) and at most 64 GiB.
const (
	minMetaRegion = 64 << 20
	maxMetaRegion = 64 << 30
	metaUnit      = metafs.DefaultUnit
)

// DefaultMetadataSize is the metadata region Mkfs reserves on a device of devSize bytes when
// MkfsOptions.MetadataSize is 0.
func DefaultMetadataSize(devSize int64) int64 {
	size := min(max(devSize/16, min(minMetaRegion, devSize/4)), maxMetaRegion)
	return alignDownInt(size, metaUnit)
}

func alignDownInt(v, a int64) int64 { return v / a * a }

// metaOptions are the metafs options for a region: the journal is a sixteenth of a small region,
// at most metafs' default.
func metaOptions(uuid [16]byte, region int64) metafs.Options {
	return metafs.Options{UUID: uuid, Unit: metaUnit, JournalSize: min(metafs.DefaultJournalSize, max(region/16, metaUnit))}
}

// memTableSize is pebble's memtable for a metadata region: an eighth of it, at most kv's 64 MiB
// default, so two memtables' WAL files and the tables they flush into fit.
func memTableSize(region int64) uint64 {
	return uint64(min(64<<20, max(region/8, 1<<20)))
}

// metaLocation is where an open store's metadata database lives.
type metaLocation struct {
	fs     *metafs.FS // nil when the database is in a host directory
	dir    string     // the database's directory (in fs, or on the host)
	vfs    vfs.FS
	region metafs.Extent
	// separate is the metadata device holding region, nil when the region is on the store's own
	// device (or there is none).
	separate blockdev.Device
}

// String describes the location for people: "device region [offset, +length)", followed by the
// data space the database grew into if any (metagrow.go), "metadata device region [offset,
// +length)", or "directory PATH".
func (m metaLocation) String() string {
	if m.separate != nil {
		return fmt.Sprintf("metadata device region [%d, +%d)", m.region.Offset, m.region.Length)
	}
	if m.fs != nil {
		s := fmt.Sprintf("device region [%d, +%d)", m.region.Offset, m.region.Length)
		if n, extents := m.grown(); extents > 0 {
			s += fmt.Sprintf(" and %d bytes of the data space in %d extents", n, extents)
		}
		return s
	}
	return "directory " + m.dir
}

// grown is the data space the database grew into (metagrow.go): bytes and extents.
func (m metaLocation) grown() (bytes int64, extents int) {
	if m.fs == nil {
		return 0, 0
	}
	space := m.fs.Space()
	for _, e := range space {
		bytes += e.Length
	}
	return bytes, len(space)
}

// openMetaLocation mounts the metadata region the label names, on dev or, for a store whose
// metadata is on a separate device, on metaDev (checked to be that store's metadata device), or
// uses dbDir on fs when the label names neither.
func openMetaLocation(dev blockdev.Device, label blockdev.Label, dbDir string, fs vfs.FS, metaDev blockdev.Device) (metaLocation, error) {
	switch {
	case label.MetadataDevice:
		return metaLocation{}, fmt.Errorf("the device is the metadata device of store %s, not a store: open the store's data device, with this one as its metadata device: %w",
			label.UUIDString(), ErrInvalid)
	case label.MetaOnSeparateDevice:
		return openSeparateMeta(label, metaDev)
	case metaDev != nil:
		where := "in a region of its own device"
		if !label.MetaOnDevice() {
			where = "in a host directory"
		}
		return metaLocation{}, fmt.Errorf("store %s has no separate metadata device (its metadata is %s), but one was given: %w", label.UUIDString(), where, ErrInvalid)
	}
	if !label.MetaOnDevice() {
		if dbDir == "" {
			return metaLocation{}, fmt.Errorf("store %s keeps its metadata in a host directory (label version %d) and none was given: %w",
				label.UUIDString(), label.Version, ErrInvalid)
		}
		return metaLocation{dir: dbDir, vfs: fs}, nil
	}
	region := metafs.Extent{Offset: label.MetaOffset, Length: label.MetaLength}
	mfs, err := metafs.Mount(dev, region, metaOptions(label.UUID, region.Length))
	if err != nil {
		return metaLocation{}, fmt.Errorf("mount metadata region: %w", err)
	}
	return metaLocation{fs: mfs, dir: metaDBDir, vfs: mfs, region: region}, nil
}

// openSeparateMeta mounts the metadata region of metaDev, which must be the metadata device of
// the store whose data device carries label.
func openSeparateMeta(label blockdev.Label, metaDev blockdev.Device) (metaLocation, error) {
	if metaDev == nil {
		return metaLocation{}, fmt.Errorf("store %s keeps its metadata on a separate metadata device, and none was given: %w", label.UUIDString(), ErrInvalid)
	}
	ml, err := checkMetaDevice(label, metaDev)
	if err != nil {
		return metaLocation{}, err
	}
	region := metafs.Extent{Offset: ml.MetaOffset, Length: ml.MetaLength}
	mfs, err := metafs.Mount(metaDev, region, metaOptions(label.UUID, region.Length))
	if err != nil {
		return metaLocation{}, fmt.Errorf("mount the metadata device's region: %w", err)
	}
	return metaLocation{fs: mfs, dir: metaDBDir, vfs: mfs, region: region, separate: metaDev}, nil
}

// checkMetaDevice reads the label of metaDev and returns it if it is the metadata device of the
// store whose data device carries label.
func checkMetaDevice(label blockdev.Label, metaDev blockdev.Device) (blockdev.Label, error) {
	ml, err := blockdev.ReadLabel(metaDev)
	switch {
	case errors.Is(err, blockdev.ErrNoLabel):
		return ml, fmt.Errorf("the metadata device given for store %s carries no Cobalt label: %w", label.UUIDString(), ErrInvalid)
	case err != nil:
		return ml, fmt.Errorf("metadata device of store %s: %w", label.UUIDString(), err)
	case !ml.MetadataDevice:
		return ml, fmt.Errorf("the metadata device given for store %s is store %s, not a metadata device: %w", label.UUIDString(), ml.UUIDString(), ErrInvalid)
	case ml.UUID != label.UUID:
		return ml, fmt.Errorf("the metadata device given for store %s is the metadata device of store %s: %w", label.UUIDString(), ml.UUIDString(), ErrInvalid)
	}
	return ml, nil
}

// close unmounts the metadata region, if any.
func (m metaLocation) close() error {
	if m.fs == nil {
		return nil
	}
	if err := m.fs.Close(); err != nil && !errors.Is(err, metafs.ErrClosed) {
		return fmt.Errorf("unmount metadata region: %w", err)
	}
	return nil
}

// kvOptions completes o for the location: its file system and, on the device, a memtable sized
// for the region and no recycled WAL files (see metaspace.go); and which of its errors mean the
// device failed, so the database stops instead of ending the process (stuck.go).
func (m metaLocation) kvOptions(o kv.Options) kv.Options {
	o.FS = m.vfs
	if m.fs != nil {
		o.MemTableSize = memTableSize(m.region.Length)
		o.NoWALRecycling = true
		// A metafs that failed a write refuses every change until mounted again: the database on
		// it stops (stuck.go) instead of meeting pebble's fatal paths.
		o.DeviceFailed = func(err error) bool { return errors.Is(err, metafs.ErrFailed) }
		return o
	}
	// A host directory: the host file system's errors for a failed disk (EIO, and EROFS once it
	// remounted itself read-only after one). A full host file system (ENOSPC) is not a failed
	// device and reaches pebble as before.
	o.DeviceFailed = func(err error) bool { return errors.Is(err, syscall.EIO) || errors.Is(err, syscall.EROFS) }
	return o
}
