package layers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// module is the module path; patterns and rules name packages relative to it.
const module = "github.com/cobaltstore/cobalt"

// pkg is what the rules need of one package from `go list -json`.
type pkg struct {
	ImportPath string
	Imports    []string
}

// graph maps an import path to its package.
type graph map[string]pkg

// rule is one line of the whiteboard: no package matched by roots may reach (directly or
// through others) a package for which forbidden returns true.
type rule struct {
	name      string
	roots     []string // go list patterns, relative to the module
	forbidden func(p pkg) bool
}

// inModule reports whether path is the module's package rel or one below it.
func inModule(path string, rels ...string) bool {
	for _, rel := range rels {
		full := module + "/" + rel
		if path == full || strings.HasPrefix(path, full+"/") {
			return true
		}
	}
	return false
}

// kubernetes reports whether path is a Kubernetes library.
func kubernetes(path string) bool {
	return strings.HasPrefix(path, "k8s.io/") || strings.HasPrefix(path, "sigs.k8s.io/")
}

var rules = []rule{
	{
		name:  "storage-engine imports nothing from Kubernetes or the rest of the module",
		roots: []string{"storage-engine/..."},
		forbidden: func(p pkg) bool {
			if kubernetes(p.ImportPath) {
				return true
			}
			return strings.HasPrefix(p.ImportPath, module+"/") && !inModule(p.ImportPath, "storage-engine")
		},
	},
	{
		name:      "the node daemon never imports the operator's controllers or the CSI controller service",
		roots:     []string{"node-daemon/...", "cmd/node-daemon"},
		forbidden: func(p pkg) bool { return inModule(p.ImportPath, "controllers", "csi/controller") },
	},
	{
		name:  "node-daemon/client imports only node-daemon/proto and node-daemon/transport from the module, nothing from Kubernetes",
		roots: []string{"node-daemon/client"},
		forbidden: func(p pkg) bool {
			if kubernetes(p.ImportPath) {
				return true
			}
			return strings.HasPrefix(p.ImportPath, module+"/") && p.ImportPath != module+"/node-daemon/client" &&
				p.ImportPath != module+"/node-daemon/proto" && p.ImportPath != module+"/node-daemon/transport"
		},
	},
	{
		name:      "the operator never imports the node's gRPC server or the storage engine",
		roots:     []string{"cmd/manager", "controllers/..."},
		forbidden: func(p pkg) bool { return inModule(p.ImportPath, "node-daemon/server", "storage-engine") },
	},
	{
		name:      "the CLI does not import the operator's controllers",
		roots:     []string{"cmd/cobalt"},
		forbidden: func(p pkg) bool { return inModule(p.ImportPath, "controllers") },
	},
}

func TestLayers(t *testing.T) {
	g := moduleGraph(t)
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			roots := match(g, r.roots)
			if len(roots) == 0 {
				t.Fatalf("patterns %v match no package", r.roots)
			}
			for _, chain := range violations(g, roots, r.forbidden) {
				for i := range chain {
					chain[i] = strings.TrimPrefix(chain[i], module+"/")
				}
				t.Errorf("import chain: %s", strings.Join(chain, " -> "))
			}
		})
	}
}

// moduleGraph runs `go list -deps -json` on every package of the module and returns the graph of
// them and everything they import.
func moduleGraph(t *testing.T) graph {
	t.Helper()
	out := run(t, "list", "-deps", "-json=ImportPath,Imports", module+"/...")
	g, err := decode(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	return g
}

// match returns the module's packages in g that patterns name, sorted; a pattern is a package
// path relative to the module, "/..." at its end also matching the packages below it.
func match(g graph, patterns []string) []string {
	var roots []string
	for path := range g {
		for _, p := range patterns {
			base, tree := strings.CutSuffix(p, "/...")
			if tree && inModule(path, base) || path == module+"/"+base {
				roots = append(roots, path)
				break
			}
		}
	}
	slices.Sort(roots)
	return roots
}

// run runs the go command (go test puts its own first in PATH) and returns its standard output.
func run(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("go", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// decode reads the stream of JSON objects `go list -json` writes.
func decode(r io.Reader) (graph, error) {
	g := graph{}
	dec := json.NewDecoder(r)
	for {
		var p pkg
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			return g, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decode: %w", err)
		}
		g[p.ImportPath] = p
	}
}

// violations returns, for every import of a forbidden package by an allowed one (an offending
// edge), the shortest import chain from one of roots through that edge. A root that is itself
// forbidden is a chain of one. Chains are in a stable order: by offending edge.
func violations(g graph, roots []string, forbidden func(pkg) bool) [][]string {
	byEdge := map[string][]string{}
	for _, root := range roots {
		if p, ok := g[root]; ok && forbidden(p) {
			byEdge[root] = []string{root}
			continue
		}
		for edge, chain := range chainsFrom(g, root, forbidden) {
			if prev, ok := byEdge[edge]; !ok || len(chain) < len(prev) {
				byEdge[edge] = chain
			}
		}
	}
	edges := make([]string, 0, len(byEdge))
	for e := range byEdge {
		edges = append(edges, e)
	}
	slices.Sort(edges)
	chains := make([][]string, 0, len(edges))
	for _, e := range edges {
		chains = append(chains, byEdge[e])
	}
	return chains
}

// chainsFrom walks the imports of root breadth first through allowed packages and returns, per
// offending edge ("importer forbidden"), the shortest chain from root ending with it.
func chainsFrom(g graph, root string, forbidden func(pkg) bool) map[string][]string {
	parent := map[string]string{root: ""}
	queue := []string{root}
	found := map[string][]string{}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, imp := range g[cur].Imports {
			p, ok := g[imp]
			if !ok {
				p = pkg{ImportPath: imp}
			}
			if forbidden(p) {
				edge := cur + " " + imp
				if _, seen := found[edge]; !seen {
					found[edge] = append(path(parent, cur), imp)
				}
				continue
			}
			if _, seen := parent[imp]; seen {
				continue
			}
			parent[imp] = cur
			queue = append(queue, imp)
		}
	}
	return found
}

// path is the chain from the walk's root to pkg, following parent links.
func path(parent map[string]string, pkg string) []string {
	var rev []string
	for p := pkg; p != ""; p = parent[p] {
		rev = append(rev, p)
	}
	slices.Reverse(rev)
	return rev
}
