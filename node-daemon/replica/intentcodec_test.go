package replica

import (
	"errors"
	"reflect"
	"testing"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
)

// expand lists the region indexes of runs.
func expand(runs []dirtyRun) []int64 {
	var idx []int64
	for _, r := range runs {
		for i := r.first; i < r.first+r.count; i++ {
			idx = append(idx, i)
		}
	}
	return idx
}

// FuzzDecodeIntent: decoding arbitrary bytes never panics, an error wraps ErrCorrupt, and whatever
// decodes encodes to a log that decodes to the same region size and regions.
func FuzzDecodeIntent(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("CWIL\x01"))
	f.Add(encodeIntent(IntentRegionSize, nil))
	f.Add(encodeIntent(IntentRegionSize, []int64{7, 0, 1, 2, 9}))
	f.Add(encodeIntent(4096, []int64{(1<<63-1)/4096 - 1}))
	f.Fuzz(func(t *testing.T, in []byte) {
		size, runs, err := decodeIntent(in)
		if err != nil {
			if !errors.Is(err, objstore.ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		size2, runs2, err := decodeIntent(encodeIntent(size, expand(runs)))
		if err != nil {
			t.Fatalf("re-encoded log does not decode: %v", err)
		}
		if size2 != size || !reflect.DeepEqual(runs2, runs) {
			t.Fatalf("round trip changed %d %+v into %d %+v", size, runs, size2, runs2)
		}
	})
}

// TestIntentCodec: regions in any order encode to sorted, merged runs; a damaged log is corrupt.
func TestIntentCodec(t *testing.T) {
	b := encodeIntent(IntentRegionSize, []int64{9, 1, 2, 3, 7})
	size, runs, err := decodeIntent(b)
	if err != nil || size != IntentRegionSize || !reflect.DeepEqual(runs, []dirtyRun{{1, 3}, {7, 1}, {9, 1}}) {
		t.Fatalf("decode = %d %+v %v", size, runs, err)
	}
	for _, bad := range [][]byte{b[:len(b)-1], append([]byte("CDLG"), b[4:]...), append(append([]byte{}, b[:len(b)-4]...), 0, 0, 0, 0)} {
		if _, _, err := decodeIntent(bad); !errors.Is(err, objstore.ErrCorrupt) {
			t.Errorf("decode of a damaged log = %v, want ErrCorrupt", err)
		}
	}
}
