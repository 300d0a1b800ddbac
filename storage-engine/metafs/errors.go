package metafs

import (
	"errors"
	"fmt"
	"syscall"
)

// Sentinel errors; test with errors.Is. Errors about a name are *os.PathError values wrapping
// os.ErrNotExist, os.ErrExist or these, as pebble and the os package expect.
var (
	// ErrCorrupt: the superblock, the journal or the state they describe is inconsistent.
	ErrCorrupt = errors.New("metafs: corrupt")
	// ErrVersion: the superblock was written by a newer format.
	ErrVersion = errors.New("metafs: format version not supported")
	// ErrNotFormatted: the region holds no metafs superblock.
	ErrNotFormatted = errors.New("metafs: region not formatted")
	// ErrNoSpace wraps syscall.ENOSPC: the region has no room for the data or the journal.
	ErrNoSpace = fmt.Errorf("metafs: no space left in metadata region: %w", syscall.ENOSPC)
	// ErrClosed: the file system or the file was closed.
	ErrClosed = errors.New("metafs: closed")
	// ErrFailed: a journal write, a file data write or a device flush failed; the in-memory state
	// may be ahead of the device, so every later change is refused until the file system is
	// mounted again.
	ErrFailed = errors.New("metafs: failed, mount again to recover")
	// ErrUnsupported: an operation pebble does not need (renaming a directory, writing through a
	// directory handle).
	ErrUnsupported = errors.New("metafs: operation not supported")
	// ErrInvalid: an argument (region, option, path) is not acceptable.
	ErrInvalid = errors.New("metafs: invalid argument")
)
