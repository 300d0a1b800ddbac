package layers

import (
	"slices"
	"strings"
	"testing"
)

// TestViolationsFindShortestChains checks the chain finder on a small graph, so a rule that
// passes does so because the graph obeys it, not because the walk missed an edge.
func TestViolationsFindShortestChains(t *testing.T) {
	g := graph{}
	for _, line := range []string{
		"cmd a b",
		"a c",
		"b c bad",
		"c bad",
		"d",
		"bad other",
		"other",
	} {
		f := strings.Fields(line)
		g[f[0]] = pkg{ImportPath: f[0], Imports: f[1:]}
	}
	isBad := func(p pkg) bool { return p.ImportPath == "bad" || p.ImportPath == "gone" }
	tests := []struct {
		name  string
		roots []string
		want  []string
	}{
		{name: "clean root", roots: []string{"d"}, want: nil},
		{name: "direct import", roots: []string{"c"}, want: []string{"c -> bad"}},
		{name: "one chain per offending edge, shortest first found", roots: []string{"cmd"},
			want: []string{"cmd -> b -> bad", "cmd -> a -> c -> bad"}},
		{name: "shortest chain over several roots", roots: []string{"cmd", "a"},
			want: []string{"cmd -> b -> bad", "a -> c -> bad"}},
		{name: "forbidden root", roots: []string{"bad"}, want: []string{"bad"}},
		{name: "import missing from the graph is still checked", roots: []string{"x"}, want: []string{"x -> gone"}},
	}
	g["x"] = pkg{ImportPath: "x", Imports: []string{"gone"}} // "gone" has no entry
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, c := range violations(g, tt.roots, isBad) {
				got = append(got, strings.Join(c, " -> "))
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("violations(%v) = %q, want %q", tt.roots, got, tt.want)
			}
		})
	}
}
