package alloc_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/cobaltstore/cobalt/storage-engine/alloc"
)

func TestExtentsCodec(t *testing.T) {
	for _, exts := range [][]alloc.Extent{
		nil,
		{ext(0, 1)},
		{ext(0, 3), ext(8, 2), ext(1<<30, 1<<20)},
	} {
		got, err := alloc.DecodeExtents(alloc.EncodeExtents(exts))
		if err != nil || !slices.Equal(got, append([]alloc.Extent{}, exts...)) {
			t.Fatalf("round trip %v: %v %v", exts, got, err)
		}
	}
	good := alloc.EncodeExtents([]alloc.Extent{ext(0, 3), ext(8, 2)})
	for name, b := range map[string][]byte{
		"empty":       nil,
		"bad-version": append([]byte{9}, good[1:]...),
		"truncated":   good[:len(good)-1],
		"trailing":    append(append([]byte{}, good...), 0),
		"huge-count":  {1, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"zero-length": {1, 1, 0, 0},
		"overflow":    {1, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
	} {
		if _, err := alloc.DecodeExtents(b); !errors.Is(err, alloc.ErrCorruptFreelist) {
			t.Errorf("%s: %v, want ErrCorruptFreelist", name, err)
		}
	}
}

func FuzzDecodeExtents(f *testing.F) {
	f.Add(alloc.EncodeExtents([]alloc.Extent{ext(0, 3), ext(8, 2)}))
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		exts, err := alloc.DecodeExtents(b)
		if err != nil {
			if !errors.Is(err, alloc.ErrCorruptFreelist) {
				t.Fatalf("error %v does not wrap ErrCorruptFreelist", err)
			}
			return
		}
		for i, e := range exts {
			if e.Length <= 0 || e.Offset < 0 || (i > 0 && e.Offset < exts[i-1].End()) {
				t.Fatalf("decoded invalid list %v", exts)
			}
		}
		again, err := alloc.DecodeExtents(alloc.EncodeExtents(exts))
		if err != nil || !slices.Equal(again, exts) {
			t.Fatalf("re-encode round trip: %v %v, want %v", again, err, exts)
		}
		// Loading it into an allocator validates it against a device and never panics.
		if len(exts) > 0 {
			_, _ = alloc.NewExtentFromFree(exts[len(exts)-1].End(), 512, exts)
		}
	})
}
