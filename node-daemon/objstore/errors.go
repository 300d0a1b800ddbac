package objstore

import "errors"

// Sentinel errors; implementations wrap them with the collection, object and operation concerned.
var (
	// ErrNotFound: the collection, object or attribute does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: the collection or object already exists.
	ErrExists = errors.New("already exists")
	// ErrNotEmpty: a collection to remove still holds objects.
	ErrNotEmpty = errors.New("collection not empty")
	// ErrNoSpace: the store has too little free space for the transaction.
	ErrNoSpace = errors.New("no space left on store")
	// ErrInvalid: an argument (name, offset, length) is not acceptable.
	ErrInvalid = errors.New("invalid argument")
	// ErrCorrupt: data or metadata failed verification; no data is returned with it.
	ErrCorrupt = errors.New("corruption detected")
	// ErrClosed: the store is closed or being closed.
	ErrClosed = errors.New("store closed")
)
