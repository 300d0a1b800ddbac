package objstore

import "context"

// Store is one mounted store as the node daemon uses it. Implementations are safe for concurrent use.
type Store interface {
	// UUID is the store's identity, from its on-device label.
	UUID() string
	// Commit applies ops atomically and durably (see the package invariants).
	Commit(ctx context.Context, ops []Op) error
	// Read returns up to length bytes of object o at off; fewer when the range crosses the end.
	Read(ctx context.Context, c, o string, off, length int64) ([]byte, error)
	// Stat returns an object's metadata.
	Stat(ctx context.Context, c, o string) (ObjectStat, error)
	// GetAttr returns one extended attribute; ErrNotFound if it or the object is missing.
	GetAttr(ctx context.Context, c, o, name string) ([]byte, error)
	// GetAttrs returns every extended attribute of o.
	GetAttrs(ctx context.Context, c, o string) (map[string][]byte, error)
	// OmapGet returns the values of keys that exist.
	OmapGet(ctx context.Context, c, o string, keys []string) (map[string][]byte, error)
	// OmapGetHeader returns the omap header (empty if unset).
	OmapGetHeader(ctx context.Context, c, o string) ([]byte, error)
	// OmapIterate calls fn for each omap entry with a key greater than startAfter, in key order,
	// until fn returns false.
	OmapIterate(ctx context.Context, c, o, startAfter string, fn func(key string, value []byte) bool) error
	// ListCollections returns the names of every collection, sorted.
	ListCollections(ctx context.Context) ([]string, error)
	// ListObjects returns up to limit object names of c from start on, sorted, and the name to
	// start the next page from ("" at the end).
	ListObjects(ctx context.Context, c, start string, limit int) (objects []string, next string, err error)
	// Statfs reports the store's capacity.
	Statfs(ctx context.Context) (Statfs, error)
	// CollectionUsage reports the space the objects of collection c hold; ErrNotFound if c is
	// missing.
	CollectionUsage(ctx context.Context, c string) (CollectionUsage, error)
}

// ObjectStat is an object's metadata.
type ObjectStat struct {
	// Size is the object's logical size in bytes.
	Size int64
}

// Statfs is a store's capacity in bytes.
type Statfs struct {
	Total     int64
	Used      int64
	Available int64
}

// CollectionUsage is the space the objects of one collection hold, in bytes.
type CollectionUsage struct {
	// Objects is the number of objects in the collection.
	Objects int64
	// Referenced is the space the collection's objects use, data they share with each other or
	// with other collections counted once.
	Referenced int64
	// Exclusive is the part of Referenced that no object outside the collection shares: what
	// removing the collection would free. A store that never shares data reports Referenced.
	Exclusive int64
}
