package nodepb

import (
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// TestGeneratedCodeMatchesProtoFiles fails when a .proto file was edited without `make proto`:
// every message's fields (name and number) and every service's methods (name and streaming) in
// the .proto sources must be exactly those of the generated descriptors. It reads the sources
// with a small parser that covers the syntax these files use, so it needs no protoc.
func TestGeneratedCodeMatchesProtoFiles(t *testing.T) {
	files := map[string]protoreflect.FileDescriptor{
		"store.proto":   File_store_proto,
		"object.proto":  File_object_proto,
		"volume.proto":  File_volume_proto,
		"replica.proto": File_replica_proto,
	}
	for name, fd := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		wantMsgs, wantRPCs := parseProto(string(src))
		gotMsgs, gotRPCs := map[string][]string{}, map[string][]string{}
		msgs := fd.Messages()
		for i := range msgs.Len() {
			m := msgs.Get(i)
			var fields []string
			for j := range m.Fields().Len() {
				f := m.Fields().Get(j)
				fields = append(fields, string(f.Name())+"="+itoa(int(f.Number())))
			}
			sort.Strings(fields)
			gotMsgs[string(m.Name())] = fields
		}
		svcs := fd.Services()
		for i := range svcs.Len() {
			s := svcs.Get(i)
			var rpcs []string
			for j := range s.Methods().Len() {
				m := s.Methods().Get(j)
				rpcs = append(rpcs, rpcSig(string(m.Name()), m.IsStreamingClient(), m.IsStreamingServer()))
			}
			sort.Strings(rpcs)
			gotRPCs[string(s.Name())] = rpcs
		}
		if d := diff(wantMsgs, gotMsgs); d != "" {
			t.Errorf("%s: messages differ from the generated code (run `make proto`): %s", name, d)
		}
		if d := diff(wantRPCs, gotRPCs); d != "" {
			t.Errorf("%s: services differ from the generated code (run `make proto`): %s", name, d)
		}
	}
}

var (
	blockRe = regexp.MustCompile(`(?m)^(message|service) (\w+) \{`)
	fieldRe = regexp.MustCompile(`(?m)^\s+(?:repeated\s+)?(?:map<[^>]+>|[\w.]+)\s+(\w+)\s*=\s*(\d+);`)
	rpcRe   = regexp.MustCompile(`(?m)^\s+rpc (\w+)\((stream )?\w+\) returns \((stream )?\w+\);`)
)

// parseProto returns each top-level message's "field=number" list and each service's method
// signatures.
func parseProto(src string) (msgs, rpcs map[string][]string) {
	msgs, rpcs = map[string][]string{}, map[string][]string{}
	locs := blockRe.FindAllStringSubmatchIndex(src, -1)
	for _, loc := range locs {
		kind, name := src[loc[2]:loc[3]], src[loc[4]:loc[5]]
		body := blockBody(src[loc[1]:])
		if kind == "message" {
			var fields []string
			for _, m := range fieldRe.FindAllStringSubmatch(body, -1) {
				fields = append(fields, m[1]+"="+m[2])
			}
			sort.Strings(fields)
			msgs[name] = fields
			continue
		}
		var sigs []string
		for _, m := range rpcRe.FindAllStringSubmatch(body, -1) {
			sigs = append(sigs, rpcSig(m[1], m[2] != "", m[3] != ""))
		}
		sort.Strings(sigs)
		rpcs[name] = sigs
	}
	return msgs, rpcs
}

// blockBody returns the text up to the brace that closes the block just opened.
func blockBody(s string) string {
	depth := 1
	for i, r := range s {
		switch r {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return s[:i]
			}
		}
	}
	return s
}

func rpcSig(name string, clientStream, serverStream bool) string {
	return name + "(" + map[bool]string{true: "stream", false: "unary"}[clientStream] + "->" + map[bool]string{true: "stream", false: "unary"}[serverStream] + ")"
}

func itoa(n int) string { return strconv.Itoa(n) }

func diff(want, got map[string][]string) string {
	var out []string
	for k, w := range want {
		if g, ok := got[k]; !ok || strings.Join(g, ",") != strings.Join(w, ",") {
			out = append(out, k+": source "+strings.Join(w, ",")+" vs generated "+strings.Join(got[k], ","))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			out = append(out, k+": generated but not in the source")
		}
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}
