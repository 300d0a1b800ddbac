package replica

import (
	"context"
	"testing"
)

// BenchmarkNodeWriteIntent measures a replica's 4 KiB writes on an in-memory store with and
// without a write-intent log, every region of the 8 MiB volume already marked (the steady state:
// a re-mark costs no save).
func BenchmarkNodeWriteIntent(b *testing.B) {
	ctx := context.Background()
	data := make([]byte, 4096)
	cases := []struct {
		name string
		log  bool
	}{
		{"no-log", false},
		{"log-marked", true},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			n := newIntentNode(b, "s1")
			u := n.st.UUID()
			if tc.log {
				if err := n.node.ClearIntent(ctx, Ref{StoreUUID: u, Volume: "v"}, 1, nil, true); err != nil {
					b.Fatal(err)
				}
			}
			regions := int64(intentVolSize / IntentRegionSize)
			for i := range regions {
				if err := n.node.Write(ctx, Ref{StoreUUID: u, Volume: "v"}, 1, i*IntentRegionSize, data); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(len(data)))
			i := int64(0)
			for b.Loop() {
				off := (i * 4096 * 257) % intentVolSize
				if err := n.node.Write(ctx, Ref{StoreUUID: u, Volume: "v"}, 1, off, data); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
