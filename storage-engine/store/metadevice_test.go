package store

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/cobaltstore/cobalt/storage-engine/alloc"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev/faultdev"
)

// newSeparateEnv makes a store on data with its metadata on meta (MkfsOptions.MetadataDevice).
func newSeparateEnv(t *testing.T, data, meta blockdev.Device, mo MkfsOptions) *testEnv {
	t.Helper()
	mo.MetadataDevice = meta
	e := newEnvMkfs(t, data, Options{MetadataDevice: meta}, mo)
	return e
}

// TestMetadataOnSeparateDevice: a store made with a separate metadata device labels both devices
// (version 4, one store UUID, the region on the metadata device), its data space starts right
// after the data device's label, it mounts from the two devices alone, and its metadata never
// touches the data device: the data device holds the label and object data only.
func TestMetadataOnSeparateDevice(t *testing.T) {
	mem, meta := blockdev.NewMem(testDevSize, 4096), blockdev.NewMem(16<<20, 4096)
	data := &writeRecorder{Device: mem}
	e := newSeparateEnv(t, data, meta, MkfsOptions{})
	data.start()
	dl, err := blockdev.ReadLabel(data)
	if err != nil {
		t.Fatal(err)
	}
	ml, err := blockdev.ReadLabel(meta)
	if err != nil {
		t.Fatal(err)
	}
	if dl.Version != 4 || !dl.MetaOnSeparateDevice || dl.MetaOnDevice() || dl.MetadataDevice {
		t.Fatalf("data device label %+v, want version 4 with its metadata on a separate device", dl)
	}
	if ml.Version != 4 || !ml.MetadataDevice || ml.UUID != dl.UUID || ml.MetaOffset != 64<<10 || ml.MetaLength != 16<<20-64<<10 {
		t.Fatalf("metadata device label %+v, want version 4, store %s, region [64 KiB, +16 MiB-64 KiB)", ml, dl.UUIDString())
	}
	if sig, err := blockdev.DetectSignature(meta); err != nil || sig.String() != "cobalt metadata device of store "+dl.UUIDString() {
		t.Fatalf("signature of the metadata device: %v, %v", sig, err)
	}
	s := e.open(t)
	if got, want := s.MetadataLocation(), fmt.Sprintf("metadata device region [65536, +%d)", 16<<20-64<<10); got != want || !s.MetadataOnDevice() || !s.MetadataOnSeparateDevice() {
		t.Fatalf("MetadataLocation = %q (want %q), MetadataOnDevice = %v, MetadataOnSeparateDevice = %v", got, want, s.MetadataOnDevice(), s.MetadataOnSeparateDevice())
	}
	if s.dataStart != labelReserve || s.Statfs().Total != testDevSize-labelReserve {
		t.Fatalf("data space starts at %d (%d bytes), want right after the label at %d", s.dataStart, s.Statfs().Total, labelReserve)
	}
	metaWrites := meta.Stats().Writes
	for i := range 20 {
		commit(t, s, NewTransaction().CreateCollection(fmt.Sprint("c", i)).Write(fmt.Sprint("c", i), "o", 0, pattern(256<<10, byte(i))).
			OmapSet(fmt.Sprint("c", i), "o", map[string][]byte{"k": pattern(4<<10, byte(i))}))
	}
	if meta.Stats().Writes == metaWrites {
		t.Fatal("20 commits wrote nothing to the metadata device")
	}
	r, err := s.Fsck(ctx, true)
	if err != nil || !r.OK() || r.MetaRegion == nil || !r.MetaRegion.SeparateDevice || r.MetaRegion.Files == 0 {
		t.Fatalf("fsck: %v %+v (region %+v)", err, r, r.MetaRegion)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Every write to the data device since mkfs landed in space an object maps: the metadata
	// (pebble's WAL and tables, metafs' journal) went to the metadata device only.
	s = e.open(t)
	var mapped []alloc.Extent
	for i := range 20 {
		k := OnodeKey{Collection: fmt.Sprint("c", i), Object: "o"}
		mustRead(t, s, k.Collection, k.Object, 0, 0, pattern(256<<10, byte(i)))
		o, err := s.loadOnode(k)
		if err != nil || o == nil {
			t.Fatalf("onode %v: %v", k, err)
		}
		for _, x := range o.Extents {
			mapped = append(mapped, alloc.Extent{Offset: int64(x.Phys), Length: int64(x.Length)})
		}
	}
	writes := data.stop()
	if len(writes) == 0 {
		t.Fatal("no writes to the data device")
	}
	for _, w := range writes {
		if !slices.ContainsFunc(mapped, func(m alloc.Extent) bool { return w.Offset >= m.Offset && w.End() <= m.End() }) {
			t.Fatalf("write [%d, +%d) to the data device is outside every object's data %v", w.Offset, w.Length, mapped)
		}
	}
	t.Logf("%d writes to the data device, all in object data; %d to the metadata device", len(writes), meta.Stats().Writes)
}

// writeRecorder is a device that records the extents written between start and stop.
type writeRecorder struct {
	blockdev.Device
	mu        sync.Mutex
	recording bool
	writes    []alloc.Extent
}

func (w *writeRecorder) WriteAt(p []byte, off int64) (int, error) {
	w.mu.Lock()
	if w.recording {
		w.writes = append(w.writes, alloc.Extent{Offset: off, Length: int64(len(p))})
	}
	w.mu.Unlock()
	return w.Device.WriteAt(p, off)
}

func (w *writeRecorder) start() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.recording = true
}

func (w *writeRecorder) stop() []alloc.Extent {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.recording = false
	return w.writes
}

// TestOpenSeparateMetadataDeviceRefusals: Open names the problem when the metadata device is
// missing, is another store's or is no metadata device, when a metadata device is given to a
// store that has none, and when the metadata device itself is opened as a store; Mkfs refuses a
// metadata device with a signature, one too small, and one given together with a directory.
func TestOpenSeparateMetadataDeviceRefusals(t *testing.T) {
	data, meta := blockdev.NewMem(testDevSize, 4096), blockdev.NewMem(16<<20, 4096)
	newSeparateEnv(t, data, meta, MkfsOptions{})
	otherData, otherMeta := blockdev.NewMem(testDevSize, 4096), blockdev.NewMem(16<<20, 4096)
	other := newSeparateEnv(t, otherData, otherMeta, MkfsOptions{})
	plain := blockdev.NewMem(testDevSize, 4096)
	newEnv(t, plain, Options{})
	dl, err := blockdev.ReadLabel(data)
	if err != nil {
		t.Fatal(err)
	}
	id := dl.UUIDString()
	cases := []struct {
		name    string
		dev     blockdev.Device
		metaDev blockdev.Device
		want    string
	}{
		{"no metadata device", data, nil, "store " + id + " keeps its metadata on a separate metadata device, and none was given"},
		{"another store's metadata device", data, otherMeta, "is the metadata device of store " + other.mustUUID(t)},
		{"a store instead", data, plain, "is store "},
		{"a blank device", data, blockdev.NewMem(16<<20, 4096), "carries no Cobalt label"},
		{"the metadata device as a store", meta, nil, "the device is the metadata device of store " + id + ", not a store"},
		{"a metadata device for a store without one", plain, meta, "has no separate metadata device (its metadata is in a region of its own device)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := Open(ctx, c.dev, "", Options{MetadataDevice: c.metaDev})
			if err == nil {
				_ = s.Close()
				t.Fatal("opened")
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want ErrInvalid saying %q", err, c.want)
			}
		})
	}
	// The refusals changed nothing: the store still opens with its own metadata device.
	s, err := Open(ctx, data, "", Options{MetadataDevice: meta})
	if err != nil {
		t.Fatal(err)
	}
	mustCheck(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	mkfsCases := []struct {
		name string
		meta blockdev.Device
		dir  string
		want error
		text string
	}{
		{"metadata device of another store", otherMeta, "", ErrForeignSignature, "metadata device has cobalt metadata device of store"},
		{"too small", blockdev.NewMem(4<<20, 4096), "", ErrInvalid, "does not fit the 4194304-byte metadata device"},
		{"and a directory", blockdev.NewMem(16<<20, 4096), "db", ErrInvalid, "a metadata device and a metadata directory"},
	}
	for _, c := range mkfsCases {
		t.Run("mkfs "+c.name, func(t *testing.T) {
			_, err := Mkfs(ctx, blockdev.NewMem(testDevSize, 4096), c.dir, MkfsOptions{MetadataDevice: c.meta})
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("Mkfs: %v, want %v saying %q", err, c.want, c.text)
			}
		})
	}
}

// mustUUID is the UUID on the environment's device label.
func (e *testEnv) mustUUID(t *testing.T) string {
	t.Helper()
	l, err := blockdev.ReadLabel(e.dev)
	if err != nil {
		t.Fatal(err)
	}
	return l.UUIDString()
}

// TestSeparateMetadataDeviceFullIsACleanError: the metadata on a separate device does not grow
// into the data device; when the metadata device fills, Commit refuses with ErrNoSpace (ENOSPC)
// while the data device has room, removals still go through, and the store mounts with every
// acknowledged object and a clean deep fsck.
func TestSeparateMetadataDeviceFullIsACleanError(t *testing.T) {
	data, meta := blockdev.NewMem(testDevSize, 4096), blockdev.NewMem(8<<20+64<<10, 4096)
	e := newSeparateEnv(t, data, meta, MkfsOptions{})
	s, err := Open(ctx, data, "", e.opts)
	if err != nil {
		t.Fatal(err)
	}
	want, err := fillWithOmap(t, s)
	t.Logf("after %d objects: %v", len(want), err)
	switch {
	case err == nil:
		t.Fatalf("%d objects with 8 KiB of omap each fit in an 8 MiB metadata device", len(want))
	case !errors.Is(err, ErrNoSpace) || !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "does not grow into the data device"):
		t.Fatalf("filling the metadata device ended with %v, want ErrNoSpace (ENOSPC) saying it does not grow into the data device", err)
	case s.Statfs().MetadataGrown != 0:
		t.Fatalf("the metadata grew into the data device by %d bytes", s.Statfs().MetadataGrown)
	case s.Statfs().Available < testDevSize/2:
		t.Fatalf("the data device has only %d bytes free: the test did not fill the metadata device first", s.Statfs().Available)
	}
	removeSome(t, s, want, 40)
	mustCheck(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	mountAndCheck(t, "after the metadata device filled", data, e.opts, want)
}

// TestFsckChecksMetadataDeviceLabel: fsck reports a metadata device label that names another
// region than the one mounted, or another cluster than the data device's.
func TestFsckChecksMetadataDeviceLabel(t *testing.T) {
	data, meta := blockdev.NewMem(testDevSize, 4096), blockdev.NewMem(16<<20, 4096)
	e := newSeparateEnv(t, data, meta, MkfsOptions{})
	s := e.open(t)
	ml, err := blockdev.ReadLabel(meta)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		edit func(*blockdev.Label)
		want string
	}{
		{"region", func(l *blockdev.Label) { l.MetaLength -= 64 << 10 }, "metadata device label names the region"},
		{"cluster", func(l *blockdev.Label) { l.ClusterID[0] = 7 }, "metadata device label names cluster"},
	} {
		t.Run(c.name, func(t *testing.T) {
			bad := ml
			c.edit(&bad)
			if err := blockdev.RewriteLabel(meta, bad); err != nil {
				t.Fatal(err)
			}
			r, err := s.Fsck(ctx, false)
			if err != nil {
				t.Fatal(err)
			}
			if r.OK() || !strings.Contains(strings.Join(r.Errors, "; "), c.want) {
				t.Fatalf("fsck errors %q, want one saying %q", r.Errors, c.want)
			}
			if err := blockdev.RewriteLabel(meta, ml); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSeparateMetadataDeviceWriteErrorFailsTheStore fails every write to the metadata device
// during a commit: the commit returns the device error wrapped in ErrFailed, the store reports
// Failed and refuses writes, the data device is untouched by it, and once the metadata device
// works again the store mounts, from the two devices as they are and from their durable images,
// with every acknowledged object and a clean deep fsck.
func TestSeparateMetadataDeviceWriteErrorFailsTheStore(t *testing.T) {
	dataMem, metaMem := blockdev.NewMem(testDevSize, 4096), blockdev.NewMem(16<<20, 4096)
	if _, err := Mkfs(ctx, dataMem, "", MkfsOptions{MetadataDevice: metaMem}); err != nil {
		t.Fatal(err)
	}
	data, err := faultdev.New(dataMem, faultdev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	meta, err := faultdev.New(metaMem, faultdev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{PreferDeferredSize: -1, MetadataDevice: meta, verifyShards: true}
	s, err := Open(ctx, data, "", opts)
	if err != nil {
		t.Fatal(err)
	}
	want := failMetadataWrites(t, s, meta, faultdev.Rule{Ops: faultdev.OpWrite, Offset: 0, Length: meta.Size(), Err: syscall.EIO})

	for _, c := range []struct {
		what       string
		data, meta blockdev.Device
	}{
		{"durable images", data.DurableImage(), meta.DurableImage()},
		{"current images", data.CurrentImage(), meta.CurrentImage()},
		{"same devices", data, meta},
	} {
		o := opts
		o.MetadataDevice = c.meta
		mountAndCheck(t, c.what, c.data, o, want)
	}
}
