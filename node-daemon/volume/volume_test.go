package volume

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
	"github.com/cobaltstore/cobalt/node-daemon/objstore/memstore"
)

const testStripe = MinStripeSize

func newManager(t *testing.T, capacity int64) (*Manager, *memstore.Store) {
	t.Helper()
	st := memstore.New("store-1", capacity)
	m, err := Open(context.Background(), st)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return m, st
}

// TestStripeName: the hand-built stripe names are the layout's "s." and 16 lower-case hex
// digits, and stripeIndex parses them back.
func TestStripeName(t *testing.T) {
	for _, i := range []int64{0, 1, 15, 16, 0xabcdef, 1<<40 + 3, 1<<63 - 1} {
		name := StripeName(i)
		if want := fmt.Sprintf("s.%016x", i); name != want {
			t.Errorf("StripeName(%d) = %q, want %q", i, name, want)
		}
		if got, ok := stripeIndex(name); !ok || got != i {
			t.Errorf("stripeIndex(%q) = %d, %v", name, got, ok)
		}
	}
}

func TestSplit(t *testing.T) {
	tests := []struct {
		name              string
		off, length, size int64
		want              []segment
	}{
		{"inside one stripe", 10, 20, 100, []segment{{0, 10, 20, 0}}},
		{"exact stripe", 100, 100, 100, []segment{{1, 0, 100, 0}}},
		{"crosses one boundary", 90, 20, 100, []segment{{0, 90, 10, 0}, {1, 0, 10, 10}}},
		{"spans three stripes", 50, 200, 100, []segment{{0, 50, 50, 0}, {1, 0, 100, 50}, {2, 0, 50, 150}}},
		{"empty", 5, 0, 100, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := split(tt.off, tt.length, tt.size)
			if len(got) != len(tt.want) {
				t.Fatalf("split = %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("split = %+v, want %+v", got, tt.want)
				}
			}
		})
	}
}

func TestCreateValidation(t *testing.T) {
	m, _ := newManager(t, 1<<30)
	ctx := context.Background()
	tests := []struct {
		name             string
		id               string
		size, stripeSize int64
		want             error
	}{
		{"empty id", "", 1 << 20, 0, objstore.ErrInvalid},
		{"slash in id", "a/b", 1 << 20, 0, objstore.ErrInvalid},
		{"zero size", "v", 0, 0, objstore.ErrInvalid},
		{"negative size", "v", -4096, 0, objstore.ErrInvalid},
		{"unaligned size", "v", 4097, 0, objstore.ErrInvalid},
		{"stripe not a power of two", "v", 1 << 20, 3 << 20, objstore.ErrInvalid},
		{"stripe too small", "v", 1 << 20, 4096, objstore.ErrInvalid},
		{"larger than the store", "v", 2 << 30, 0, objstore.ErrNoSpace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.Create(ctx, tt.id, tt.size, tt.stripeSize)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Create(%q, %d, %d) = %v, want %v", tt.id, tt.size, tt.stripeSize, err, tt.want)
			}
		})
	}
	if m.Count() != 0 {
		t.Fatalf("%d volumes after only invalid creates", m.Count())
	}
}

func TestCreateIdempotentAndConflict(t *testing.T) {
	m, _ := newManager(t, 1<<30)
	ctx := context.Background()
	info, err := m.Create(ctx, "v1", 1<<20, 0)
	if err != nil {
		t.Fatal(err)
	}
	if info.StripeSize != DefaultStripeSize || info.Size != 1<<20 {
		t.Fatalf("info = %+v", info)
	}
	if _, err := m.Create(ctx, "v1", 1<<20, 0); err != nil {
		t.Fatalf("repeated create: %v", err)
	}
	if _, err := m.Create(ctx, "v1", 2<<20, 0); !errors.Is(err, ErrConflict) {
		t.Fatalf("create with other size = %v, want ErrConflict", err)
	}
}

func TestResize(t *testing.T) {
	m, st := newManager(t, 1<<30)
	ctx := context.Background()
	if _, err := m.Create(ctx, "v", 1<<20, testStripe); err != nil {
		t.Fatal(err)
	}
	if err := m.Write(ctx, "v", 1<<20, []byte{1}); !errors.Is(err, objstore.ErrInvalid) {
		t.Fatalf("write past the end before resize = %v, want ErrInvalid", err)
	}
	info, err := m.Resize(ctx, "v", 2<<20)
	if err != nil || info.Size != 2<<20 {
		t.Fatalf("Resize = %+v, %v", info, err)
	}
	if err := m.Write(ctx, "v", 1<<20, []byte{1}); err != nil {
		t.Fatalf("write in the grown range: %v", err)
	}
	if _, err := m.Resize(ctx, "v", 1<<20); !errors.Is(err, ErrShrink) {
		t.Fatalf("shrink = %v, want ErrShrink", err)
	}
	if _, err := m.Resize(ctx, "v", 4<<30); !errors.Is(err, objstore.ErrNoSpace) {
		t.Fatalf("resize past capacity = %v, want ErrNoSpace", err)
	}
	if _, err := m.Resize(ctx, "missing", 4<<20); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("resize of a missing volume = %v, want ErrNotFound", err)
	}
	// The new size survives a reopen.
	m2, err := Open(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := m2.Get(ctx, "v"); err != nil || info.Size != 2<<20 || info.StripeSize != testStripe {
		t.Fatalf("after reopen Get = %+v, %v", info, err)
	}
}

func TestIOOutOfRange(t *testing.T) {
	m, _ := newManager(t, 1<<30)
	ctx := context.Background()
	if _, err := m.Create(ctx, "v", 1<<20, testStripe); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		off, length int64
	}{
		{"negative offset", -1, 1},
		{"past the end", 1 << 20, 1},
		{"crosses the end", 1<<20 - 1, 2},
		{"negative length", 0, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := m.Read(ctx, "v", tt.off, tt.length); !errors.Is(err, objstore.ErrInvalid) {
				t.Errorf("Read = %v, want ErrInvalid", err)
			}
			if tt.length >= 0 {
				if err := m.Write(ctx, "v", tt.off, make([]byte, tt.length)); !errors.Is(err, objstore.ErrInvalid) {
					t.Errorf("Write = %v, want ErrInvalid", err)
				}
			}
			if err := m.Trim(ctx, "v", tt.off, tt.length); !errors.Is(err, objstore.ErrInvalid) {
				t.Errorf("Trim = %v, want ErrInvalid", err)
			}
		})
	}
	if _, err := m.Read(ctx, "nope", 0, 1); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("read of a missing volume = %v, want ErrNotFound", err)
	}
}

// TestRandomIOAgainstModel applies random writes (Write and WriteOwned), trims and reads to a volume and to a byte slice
// and compares every read; it also checks thin provisioning (allocation never exceeds what was
// written) and that the data survives reopening the manager.
func TestRandomIOAgainstModel(t *testing.T) {
	const size = 8 * testStripe
	m, st := newManager(t, 1<<30)
	ctx := context.Background()
	if _, err := m.Create(ctx, "v", size, testStripe); err != nil {
		t.Fatal(err)
	}
	model := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 400 {
		off := rng.Int64N(size)
		length := rng.Int64N(min(size-off, 3*testStripe)) + 1
		switch r := rng.IntN(10); {
		case r < 5:
			data := make([]byte, length)
			for j := range data {
				data[j] = byte(rng.IntN(255) + 1)
			}
			write := m.Write
			if r%2 == 1 {
				write = m.WriteOwned // handed over, as the node API's requests hand their data
			}
			if err := write(ctx, "v", off, data); err != nil {
				t.Fatalf("op %d: write: %v", i, err)
			}
			copy(model[off:], data)
		case r < 7:
			if err := m.Trim(ctx, "v", off, length); err != nil {
				t.Fatalf("op %d: trim: %v", i, err)
			}
			clear(model[off : off+length])
		default:
			got, err := m.Read(ctx, "v", off, length)
			if err != nil {
				t.Fatalf("op %d: read: %v", i, err)
			}
			if !bytes.Equal(got, model[off:off+length]) {
				t.Fatalf("op %d: read [%d, +%d) differs from the model", i, off, length)
			}
		}
	}
	m2, err := Open(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	got, err := m2.Read(ctx, "v", 0, size)
	if err != nil || !bytes.Equal(got, model) {
		t.Fatalf("whole volume after reopen differs from the model (err %v)", err)
	}
	info, err := m2.Get(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	if info.Allocated > size {
		t.Fatalf("allocated %d > size %d", info.Allocated, size)
	}
}

func TestThinProvisioningAndTrim(t *testing.T) {
	m, st := newManager(t, 1<<30)
	ctx := context.Background()
	if _, err := m.Create(ctx, "v", 16*testStripe, testStripe); err != nil {
		t.Fatal(err)
	}
	if info, _ := m.Get(ctx, "v"); info.Allocated != 0 {
		t.Fatalf("new volume has %d bytes allocated", info.Allocated)
	}
	// One byte in stripe 5 allocates only up to that byte.
	if err := m.Write(ctx, "v", 5*testStripe+99, []byte{7}); err != nil {
		t.Fatal(err)
	}
	if info, _ := m.Get(ctx, "v"); info.Allocated != 100 {
		t.Fatalf("allocated = %d after a 1-byte write at stripe offset 99, want 100", info.Allocated)
	}
	// Fill stripes 2-3 fully, then trim stripe 2 fully and half of stripe 3.
	if err := m.Write(ctx, "v", 2*testStripe, bytes.Repeat([]byte{9}, 2*testStripe)); err != nil {
		t.Fatal(err)
	}
	if err := m.Trim(ctx, "v", 2*testStripe, testStripe+testStripe/2); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Stat(ctx, CollectionName("v"), StripeName(2)); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("fully trimmed stripe still exists (stat err %v)", err)
	}
	got, err := m.Read(ctx, "v", 3*testStripe, testStripe)
	if err != nil {
		t.Fatal(err)
	}
	want := append(make([]byte, testStripe/2), bytes.Repeat([]byte{9}, testStripe/2)...)
	if !bytes.Equal(got, want) {
		t.Fatal("partially trimmed stripe does not read as zeros then data")
	}
}

func TestDelete(t *testing.T) {
	m, st := newManager(t, 1<<40)
	ctx := context.Background()
	const stripes = deleteBatch + 10 // more than one delete transaction
	if _, err := m.Create(ctx, "v", stripes*testStripe, testStripe); err != nil {
		t.Fatal(err)
	}
	for i := range int64(stripes) {
		if err := m.Write(ctx, "v", i*testStripe, []byte{1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Delete(ctx, "v"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	colls, _ := st.ListCollections(ctx)
	if len(colls) != 0 {
		t.Fatalf("collections left after delete: %v", colls)
	}
	if fs, _ := st.Statfs(ctx); fs.Used != 0 {
		t.Fatalf("%d bytes still used after delete", fs.Used)
	}
	if _, err := m.Get(ctx, "v"); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("Get after delete = %v, want ErrNotFound", err)
	}
	if err := m.Delete(ctx, "v"); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
}

func TestDeleteFinishesInterruptedDelete(t *testing.T) {
	m, st := newManager(t, 1<<30)
	ctx := context.Background()
	if _, err := m.Create(ctx, "v", 4*testStripe, testStripe); err != nil {
		t.Fatal(err)
	}
	if err := m.Write(ctx, "v", 0, make([]byte, 3*testStripe)); err != nil {
		t.Fatal(err)
	}
	// An earlier Delete removed one stripe, then the daemon died.
	c := CollectionName("v")
	if err := st.Commit(ctx, []objstore.Op{objstore.Remove(c, StripeName(0))}); err != nil {
		t.Fatal(err)
	}
	m2, err := Open(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.Delete(ctx, "v"); err != nil {
		t.Fatalf("Delete after restart: %v", err)
	}
	if colls, _ := st.ListCollections(ctx); len(colls) != 0 {
		t.Fatalf("collections left: %v", colls)
	}
}

func TestNoSpace(t *testing.T) {
	m, _ := newManager(t, 2*testStripe)
	ctx := context.Background()
	if _, err := m.Create(ctx, "v", 2*testStripe, testStripe); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(ctx, "w", 2*testStripe, testStripe); err != nil {
		t.Fatal(err) // thin provisioning: over-commitment is allowed
	}
	if err := m.Write(ctx, "v", 0, make([]byte, 2*testStripe)); err != nil {
		t.Fatal(err)
	}
	if err := m.Write(ctx, "w", 0, make([]byte, testStripe)); !errors.Is(err, objstore.ErrNoSpace) {
		t.Fatalf("write to a full store = %v, want ErrNoSpace", err)
	}
}

func TestOpenRejectsCorruptMeta(t *testing.T) {
	st := memstore.New("s", 1<<30)
	ctx := context.Background()
	c := CollectionName("bad")
	err := st.Commit(ctx, []objstore.Op{
		objstore.CreateCollection(c), objstore.Touch(c, metaObject),
		objstore.SetAttr(c, metaObject, attrFormat, []byte{99}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, st); !errors.Is(err, objstore.ErrCorrupt) {
		t.Fatalf("Open with corrupt meta = %v, want ErrCorrupt", err)
	}
}

// TestConcurrentIOAndControl runs writes and reads on one volume while other goroutines trim,
// flush, create, resize and delete; under -race (make test-race) it checks the locking, every
// read returns what its writer wrote and every trimmed range reads as zeros.
func TestConcurrentIOAndControl(t *testing.T) {
	m, _ := newManager(t, 1<<30)
	ctx := context.Background()
	// Stripes 0-7 belong to the writers, 8-9 to the trimmer.
	if _, err := m.Create(ctx, "io", 10*testStripe, testStripe); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				data := bytes.Repeat([]byte{byte(w*50 + i)}, 4096)
				off := int64(w) * testStripe
				if err := m.Write(ctx, "io", off, data); err != nil {
					errs <- err
					return
				}
				got, err := m.Read(ctx, "io", off, 4096)
				if err != nil {
					errs <- fmt.Errorf("writer %d: read back: %w", w, err)
					return
				}
				if !bytes.Equal(got, data) {
					errs <- fmt.Errorf("writer %d: read back differs", w)
					return
				}
			}
		}()
	}
	// The trimmer writes into stripes 8 and 9, then trims all of stripe 8 (removed) and the
	// written part of stripe 9 (zeroed), and both must read as zeros.
	wg.Add(1)
	go func() {
		defer wg.Done()
		data := bytes.Repeat([]byte{0xa5}, 4096)
		zeros := make([]byte, 4096)
		for range 30 {
			for _, off := range []int64{8*testStripe + 4096, 9*testStripe + testStripe/2} {
				if err := m.Write(ctx, "io", off, data); err != nil {
					errs <- fmt.Errorf("trimmer: write: %w", err)
					return
				}
			}
			if err := m.Trim(ctx, "io", 8*testStripe, testStripe); err != nil {
				errs <- fmt.Errorf("trimmer: trim stripe 8: %w", err)
				return
			}
			if err := m.Trim(ctx, "io", 9*testStripe+testStripe/2, 4096); err != nil {
				errs <- fmt.Errorf("trimmer: trim in stripe 9: %w", err)
				return
			}
			for _, off := range []int64{8*testStripe + 4096, 9*testStripe + testStripe/2} {
				got, err := m.Read(ctx, "io", off, 4096)
				if err != nil {
					errs <- fmt.Errorf("trimmer: read at %d: %w", off, err)
					return
				}
				if !bytes.Equal(got, zeros) {
					errs <- fmt.Errorf("trimmer: offset %d does not read as zeros after trim", off)
					return
				}
			}
		}
	}()
	// The flusher puts barriers between the others' I/O.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 100 {
			if err := m.Flush(ctx, "io"); err != nil {
				errs <- fmt.Errorf("flusher: %w", err)
				return
			}
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 20 {
			id := fmt.Sprintf("ctl-%d", i)
			if _, err := m.Create(ctx, id, testStripe, testStripe); err != nil {
				errs <- err
				return
			}
			if _, err := m.Resize(ctx, id, 2*testStripe); err != nil {
				errs <- err
				return
			}
			if _, err := m.Resize(ctx, "io", int64(10+i)*testStripe); err != nil {
				errs <- err
				return
			}
			if err := m.Delete(ctx, id); err != nil {
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if info, err := m.Get(ctx, "io"); err != nil || info.Size != 29*testStripe || m.Count() != 1 {
		t.Fatalf("after the run: %+v, %v, %d volumes", info, err, m.Count())
	}
}

func TestUserAttrs(t *testing.T) {
	m, _ := newManager(t, 1<<30)
	ctx := context.Background()
	if _, err := m.Create(ctx, "v", 1<<20, testStripe); err != nil {
		t.Fatal(err)
	}
	if _, err := m.UserAttr(ctx, "v", "gen"); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("unset attribute = %v, want ErrNotFound", err)
	}
	if err := m.SetUserAttr(ctx, "v", "gen", []byte{7}); err != nil {
		t.Fatal(err)
	}
	// A user attribute named like a volume attribute does not touch it.
	if err := m.SetUserAttr(ctx, "v", attrSize, []byte{1}); err != nil {
		t.Fatal(err)
	}
	if got, err := m.UserAttr(ctx, "v", "gen"); err != nil || !bytes.Equal(got, []byte{7}) {
		t.Fatalf("UserAttr = %v, %v", got, err)
	}
	reopened, err := Open(ctx, m.Store())
	if err != nil {
		t.Fatalf("reopen with user attributes: %v", err)
	}
	if info, err := reopened.Get(ctx, "v"); err != nil || info.Size != 1<<20 {
		t.Fatalf("after reopen: %+v, %v", info, err)
	}
	if got, err := reopened.UserAttr(ctx, "v", "gen"); err != nil || !bytes.Equal(got, []byte{7}) {
		t.Fatalf("UserAttr after reopen = %v, %v", got, err)
	}
	if err := m.SetUserAttr(ctx, "missing", "gen", []byte{1}); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("attribute of a missing volume = %v, want ErrNotFound", err)
	}
	if err := m.SetUserAttr(ctx, "v", "", []byte{1}); !errors.Is(err, objstore.ErrInvalid) {
		t.Fatalf("empty name = %v, want ErrInvalid", err)
	}
}
