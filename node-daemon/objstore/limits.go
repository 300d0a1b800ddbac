package objstore

import (
	"fmt"
	"math"
	"strings"
)

// Name limits of the contract. The collection and object limits are the storage engine's
// (storage-engine/kv MaxCollectionName and MaxObjectName; the engine adapter's tests check that
// they agree); the attribute and omap key limits are the daemon's own.
const (
	// MaxCollectionName is the longest collection name in bytes.
	MaxCollectionName = 255
	// MaxObjectName is the longest object name in bytes.
	MaxObjectName = 4096
	// MaxAttrName is the longest extended attribute name in bytes.
	MaxAttrName = 255
	// MaxOmapKey is the longest omap key in bytes.
	MaxOmapKey = 4096
)

// validName checks that name is 1..limit bytes without NUL; what says which kind of name it is.
func validName(what, name string, limit int) error {
	if name == "" || len(name) > limit || strings.IndexByte(name, 0) >= 0 {
		return fmt.Errorf("%s %q must be 1..%d bytes without NUL: %w", what, truncated(name), limit, ErrInvalid)
	}
	return nil
}

// truncated shortens a name for an error message.
func truncated(name string) string {
	if len(name) > 64 {
		return name[:64] + "..."
	}
	return name
}

// ValidateCollection checks a collection name.
func ValidateCollection(c string) error { return validName("collection name", c, MaxCollectionName) }

// ValidateObject checks an object name.
func ValidateObject(o string) error { return validName("object name", o, MaxObjectName) }

// ValidateRef checks the collection and object names of an object.
func ValidateRef(c, o string) error {
	if err := ValidateCollection(c); err != nil {
		return err
	}
	return ValidateObject(o)
}

// ValidateAttrName checks an extended attribute name.
func ValidateAttrName(name string) error { return validName("attribute name", name, MaxAttrName) }

// ValidateOmapKey checks an omap key. The empty key is refused: OmapIterate could not return it.
func ValidateOmapKey(key string) error { return validName("omap key", key, MaxOmapKey) }

// ValidateRange checks the byte range [off, off+length) of an object: both non-negative and the end
// representable.
func ValidateRange(off, length int64) error {
	if off < 0 || length < 0 {
		return fmt.Errorf("offset %d and length %d must not be negative: %w", off, length, ErrInvalid)
	}
	if length > math.MaxInt64-off {
		return fmt.Errorf("offset %d plus length %d overflows: %w", off, length, ErrInvalid)
	}
	return nil
}

// ValidateListLimit checks the page size of ListObjects.
func ValidateListLimit(limit int) error {
	if limit <= 0 {
		return fmt.Errorf("list limit %d must be positive: %w", limit, ErrInvalid)
	}
	return nil
}
