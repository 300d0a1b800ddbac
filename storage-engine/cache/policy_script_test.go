package cache

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestPolicyScripts runs the data-driven scripts under testdata/policy against a one-shard
// cache. Commands (one per line, '#' starts a comment):
//
//	new policy=2q|lru capacity=N [unit=bytes|entries] [kin=R] [kout=R]
//	insert KEY [BYTES]        (default 1 byte; charge = bytes for unit=bytes)
//	get KEY hit|miss
//	pin|unpin|dirty|clean|remove KEY [err]
//	resize KEY BYTES
//	capacity N
//	expect [a1in=[..]] [am=[..]] [a1out=[..]] [lru=[..]] [charge=N] [bytes=N] [entries=N]
//	       [pinned=N] [dirty=N] [hits=N] [misses=N] [evictions=N]
//
// Lists are printed front (most recent) to back. Every command is followed by Check.
func TestPolicyScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/policy/*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) { runPolicyScript(t, f) })
	}
}

func runPolicyScript(t *testing.T, path string) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var c *Cache[string, int]
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		if fields[0] != "new" && c == nil {
			t.Fatalf("%s:%d: %q before new", path, line, text)
		}
		if err := runPolicyCommand(&c, fields); err != nil {
			t.Fatalf("%s:%d: %s: %v", path, line, text, err)
		}
		if c != nil {
			if err := c.Check(); err != nil {
				t.Fatalf("%s:%d: %s: invariant: %v", path, line, text, err)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

func runPolicyCommand(cp **Cache[string, int], fields []string) error {
	cmd, args := fields[0], fields[1:]
	if cmd == "new" {
		o := Options{Shards: 1, Unit: UnitBytes}
		for _, a := range args {
			k, v, _ := strings.Cut(a, "=")
			var err error
			switch k {
			case "policy":
				o.Policy, err = ParsePolicy(v)
			case "capacity":
				o.Capacity, err = strconv.ParseInt(v, 10, 64)
			case "unit":
				if v == "entries" {
					o.Unit = UnitEntries
				}
			case "kin":
				o.KinRatio, err = strconv.ParseFloat(v, 64)
			case "kout":
				o.KoutRatio, err = strconv.ParseFloat(v, 64)
			default:
				err = fmt.Errorf("unknown option %q", k)
			}
			if err != nil {
				return err
			}
		}
		c, err := New[string, int](o, nil)
		*cp = c
		return err
	}
	c := *cp
	wantErr := len(args) > 0 && args[len(args)-1] == "err"
	if wantErr {
		args = args[:len(args)-1]
	}
	checkErr := func(err error) error {
		if wantErr && err == nil {
			return fmt.Errorf("expected an error")
		}
		if !wantErr && err != nil {
			return err
		}
		return nil
	}
	num := func(i int, def int64) (int64, error) {
		if len(args) <= i {
			return def, nil
		}
		return strconv.ParseInt(args[i], 10, 64)
	}
	switch cmd {
	case "insert":
		n, err := num(1, 1)
		if err != nil {
			return err
		}
		_, _, err = c.Insert(args[0], 0, n)
		return checkErr(err)
	case "get":
		_, ok := c.Get(args[0])
		if want := len(args) > 1 && args[1] == "hit"; ok != want {
			return fmt.Errorf("got hit=%v", ok)
		}
		return nil
	case "pin":
		return checkErr(c.Pin(args[0]))
	case "unpin":
		return checkErr(c.Unpin(args[0]))
	case "dirty":
		return checkErr(c.MarkDirty(args[0]))
	case "clean":
		return checkErr(c.MarkClean(args[0]))
	case "resize":
		n, err := num(1, 1)
		if err != nil {
			return err
		}
		return checkErr(c.Resize(args[0], n))
	case "remove":
		if ok := c.Remove(args[0]); ok == wantErr {
			return fmt.Errorf("remove returned %v", ok)
		}
		return nil
	case "capacity":
		n, err := num(0, 0)
		if err != nil {
			return err
		}
		c.SetCapacity(n)
		return nil
	case "expect":
		return expectState(c, strings.Join(args, " "))
	}
	return fmt.Errorf("unknown command %q", cmd)
}

// expectState compares "name=value" pairs (lists in brackets) with the single shard's state.
func expectState(c *Cache[string, int], spec string) error {
	s := c.shards[0]
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.metricsLocked()
	for spec = strings.TrimSpace(spec); spec != ""; spec = strings.TrimSpace(spec) {
		name, rest, ok := strings.Cut(spec, "=")
		if !ok {
			return fmt.Errorf("bad expectation %q", spec)
		}
		var val string
		if strings.HasPrefix(rest, "[") {
			end := strings.Index(rest, "]")
			if end < 0 {
				return fmt.Errorf("unterminated list in %q", spec)
			}
			val, spec = rest[1:end], rest[end+1:]
			id := map[string]listID{"a1in": listA1in, "am": listAm, "a1out": listA1out, "lru": listLRU}[name]
			l := s.mu.policy.list(id)
			if l == nil {
				return fmt.Errorf("no list %q in policy %s", name, c.opts.Policy)
			}
			if got := strings.Join(l.keys(), " "); got != strings.Join(strings.Fields(val), " ") {
				return fmt.Errorf("%s=[%s], want [%s]", name, got, val)
			}
			continue
		}
		val, spec, _ = strings.Cut(rest, " ")
		want, err := strconv.ParseInt(val, 10, 64)
		if err != nil {
			return err
		}
		got, ok := map[string]int64{
			"charge": m.Charge, "bytes": m.Bytes, "entries": m.Entries, "pinned": m.Pinned,
			"dirty": m.Dirty, "hits": m.Hits, "misses": m.Misses, "evictions": m.Evictions,
		}[name]
		if !ok {
			return fmt.Errorf("unknown expectation %q", name)
		}
		if got != want {
			return fmt.Errorf("%s=%d, want %d", name, got, want)
		}
	}
	return nil
}
