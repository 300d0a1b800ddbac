package metafs

import (
	"fmt"
	"log/slog"

	"github.com/cobaltstore/cobalt/storage-engine/alloc"
)

// Extent is a run of device bytes [Offset, Offset+Length).
type Extent = alloc.Extent

// Defaults.
const (
	// DefaultUnit is the allocation unit of files and the journal.
	DefaultUnit = 64 << 10
	// DefaultJournalSize is the journal's length at format; compaction may grow it.
	DefaultJournalSize = 4 << 20
	// maxTail is how much appended data a file buffers before it writes whole blocks out.
	maxTail = 1 << 20
	// maxGrowth bounds how much a file's allocation grows at once beyond what a write needs.
	maxGrowth = 16 << 20
)

// Options configure Format and Mount. The zero value picks defaults.
type Options struct {
	// UUID ties the file system to its owner (the store): Format records it and Mount refuses a
	// region whose superblock names another (unless zero).
	UUID [16]byte
	// Unit is the allocation unit, a power of two of at least 4096 and a multiple of the
	// device's block size (Format only; Mount reads it from the superblock). 0 picks DefaultUnit.
	Unit int64
	// JournalSize is the journal's length at format (0: DefaultJournalSize), rounded up to Unit.
	JournalSize int64
	// Logger receives a line per journal compaction and per failure; nil discards them.
	Logger *slog.Logger
}

func (o Options) withDefaults(blockSize int) (Options, error) {
	if o.Unit == 0 {
		o.Unit = DefaultUnit
	}
	if o.Unit < 4096 || o.Unit&(o.Unit-1) != 0 || o.Unit > 64<<20 || o.Unit%int64(blockSize) != 0 {
		return o, fmt.Errorf("allocation unit %d is not a power of two in [4 KiB, 64 MiB] and a multiple of the block size %d: %w", o.Unit, blockSize, ErrInvalid)
	}
	if o.JournalSize == 0 {
		o.JournalSize = DefaultJournalSize
	}
	if o.JournalSize < 0 {
		return o, fmt.Errorf("journal size %d: %w", o.JournalSize, ErrInvalid)
	}
	o.JournalSize = alignUp(o.JournalSize, o.Unit)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

func alignUp(v, a int64) int64   { return (v + a - 1) / a * a }
func alignDown(v, a int64) int64 { return v / a * a }

// reservedEnd is the end of the region's first part, kept for the two superblock slots.
func reservedEnd(region Extent, unit int64) int64 {
	return region.Offset + alignUp(superReserve, unit)
}
