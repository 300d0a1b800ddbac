package store

import (
	"errors"
	"fmt"
)

// Sentinel errors; test with errors.Is. Store errors wrap them with the collection, object and
// operation concerned.
var (
	// ErrNotFound: the collection, object or attribute does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrExists: the collection or object already exists.
	ErrExists = errors.New("store: already exists")
	// ErrNotEmpty: a collection to remove still holds objects.
	ErrNotEmpty = errors.New("store: collection not empty")
	// ErrNoSpace: the device has too little free space for the transaction.
	ErrNoSpace = errors.New("store: no space left on device")
	// ErrInvalid: an argument (name, offset, option) is not acceptable.
	ErrInvalid = errors.New("store: invalid argument")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store: closed")
	// ErrForeignSignature: mkfs found another filesystem or store on the device and Force was not set.
	ErrForeignSignature = errors.New("store: device carries a foreign signature")
	// ErrFailed: a metadata commit failed in a way that leaves the in-memory state uncertain; the
	// store refuses further writes until it is reopened (mount recovers a consistent state).
	ErrFailed = errors.New("store: failed, reopen to recover")
)

// CorruptionError reports data or metadata that failed verification. It is never returned together
// with data: a read that hits corruption returns no bytes.
type CorruptionError struct {
	Collection, Object string
	// Offset is the logical offset in the object of the checksum block that failed (-1 if the
	// corruption is not in object data).
	Offset int64
	// Phys is the device offset of the failed block (-1 if unknown).
	Phys int64
	// Detail says what did not match.
	Detail string
}

func (e *CorruptionError) Error() string {
	if e.Object == "" {
		return fmt.Sprintf("store: corruption: %s", e.Detail)
	}
	return fmt.Sprintf("store: corruption in %s/%s at offset %d (device offset %d): %s",
		e.Collection, e.Object, e.Offset, e.Phys, e.Detail)
}

// IsCorruption reports whether err is or wraps a CorruptionError.
func IsCorruption(err error) bool {
	var ce *CorruptionError
	return errors.As(err, &ce)
}

func corruptMeta(format string, args ...any) error {
	return &CorruptionError{Offset: -1, Phys: -1, Detail: fmt.Sprintf(format, args...)}
}
