package store

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev/faultdev"
)

// imagingDevice takes crash images of a faultdev.Device just before each of its flushes, while
// armed: the instants when the most writes are pending, the WAL's among them.
type imagingDevice struct {
	*faultdev.Device
	rng      *rand.Rand
	perFlush int

	mu     sync.Mutex
	armed  bool
	images []*blockdev.MemDevice
}

func (d *imagingDevice) Flush() error {
	d.mu.Lock()
	if d.armed {
		for range d.perFlush {
			img, _, err := d.CrashImage(d.rng)
			if err != nil {
				d.mu.Unlock()
				return err
			}
			d.images = append(d.images, img)
		}
	}
	d.mu.Unlock()
	return d.Device.Flush()
}

func (d *imagingDevice) arm(on bool) []*blockdev.MemDevice {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.armed = on
	imgs := d.images
	d.images = nil
	return imgs
}

// TestDataDurableBeforeItsMetadata guards the write path's ordering on a store whose metadata is
// on its own device: a group's copy-on-write data is flushed before the group's batch reaches the
// WAL, not only by the WAL sync's flush. A device keeps unflushed writes in any order at a power
// cut, so a WAL record written and not yet flushed may survive while the data it maps is lost;
// metafs lets pebble read a WAL up to its first invalid chunk, so such a record would be
// replayed and leave the object pointing at blocks that fail their checksums. Crash images are
// taken before every flush while copy-on-write overwrites commit one by one (each group's
// pending writes at its data flush, and the WAL's at the WAL's flush); each image must mount, pass
// a deep fsck, and hold each object as it was before or after its overwrite.
func TestDataDurableBeforeItsMetadata(t *testing.T) {
	const (
		objects  = 4
		rounds   = 6
		perFlush = 4
		size     = 64 << 10
	)
	fdev, err := faultdev.New(blockdev.NewMem(32<<20, 4096), faultdev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dev := &imagingDevice{Device: fdev, rng: rand.New(rand.NewPCG(7, 11)), perFlush: perFlush}
	e := newEnv(t, dev, Options{PreferDeferredSize: -1, DeferredInterval: time.Hour})
	s := e.open(t)
	name := func(i int) string { return fmt.Sprint("o", i) }
	content := func(i, version int) []byte { return pattern(size, byte(31*i+version)) }
	txn := NewTransaction().CreateCollection("c")
	for i := range objects {
		txn.Write("c", name(i), 0, content(i, 0))
	}
	commit(t, s, txn)

	// An image taken during object i's overwrite to version v holds o<i> at version v-1 or v.
	type image struct {
		img  *blockdev.MemDevice
		i, v int
	}
	var images []image
	for v := 1; v <= rounds; v++ {
		for i := range objects {
			dev.arm(true)
			commit(t, s, NewTransaction().Write("c", name(i), 0, content(i, v)))
			for _, img := range dev.arm(false) {
				images = append(images, image{img: img, i: i, v: v})
			}
		}
	}
	if len(images) == 0 {
		t.Fatal("no flush was imaged")
	}
	for k, im := range images {
		s, err := Open(ctx, im.img, "", Options{})
		if err != nil {
			t.Fatalf("image %d: mount: %v", k, err)
		}
		r, err := s.Fsck(ctx, true)
		if err != nil || !r.OK() {
			t.Fatalf("image %d (overwrite of %s to version %d): fsck: %v %q", k, name(im.i), im.v, err, r.Errors)
		}
		got, err := s.Read(ctx, "c", name(im.i), 0, size)
		if err != nil {
			t.Fatalf("image %d: read %s: %v", k, name(im.i), err)
		}
		if !bytes.Equal(got, content(im.i, im.v-1)) && !bytes.Equal(got, content(im.i, im.v)) {
			t.Fatalf("image %d: %s holds neither version %d nor %d", k, name(im.i), im.v-1, im.v)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d crash images of %d copy-on-write overwrites verified", len(images), rounds*objects)
}
