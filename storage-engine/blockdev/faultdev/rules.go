package faultdev

import (
	"strings"
	"syscall"
)

// eio is the default injected error.
const eio = syscall.EIO

// Op is a set of device operations a Rule applies to.
type Op uint8

// Operations.
const (
	OpRead Op = 1 << iota
	OpWrite
	OpFlush
	OpAny = OpRead | OpWrite | OpFlush
)

func (o Op) String() string {
	var parts []string
	for _, p := range []struct {
		op   Op
		name string
	}{{OpRead, "read"}, {OpWrite, "write"}, {OpFlush, "flush"}} {
		if o&p.op != 0 {
			parts = append(parts, p.name)
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "|")
}

// Rule injects faults into matching operations. An operation matches when its kind is in Ops and,
// if Length > 0, its byte range overlaps [Offset, Offset+Length) (a flush has no range and matches
// any range). The first After matching operations pass; the following Count matching operations
// fail (Count 0: every one, until ClearRules). Rules are checked in the order they were injected,
// the first one that fires decides.
type Rule struct {
	Ops            Op
	After          int
	Count          int
	Offset, Length int64
	// Err is the error a failing operation returns, wrapped together with ErrInjected, e.g.
	// syscall.EIO or syscall.ENOSPC. Ignored when PowerCut is set.
	Err error
	// PowerCut makes the firing operation cut the power instead (see PowerCut): it and every later
	// operation fail with ErrPoweredOff. Use it to crash at an exact point of a workload.
	PowerCut bool
}

// ruleState is a Rule with its counters.
type ruleState struct {
	Rule
	seen, fired int
}

func (r *ruleState) matches(op Op, off, length int64) bool {
	if r.Ops&op == 0 {
		return false
	}
	if r.Length <= 0 || op == OpFlush {
		return true
	}
	return off < r.Offset+r.Length && r.Offset < off+max(length, 1)
}

// fire counts a matching operation and reports whether it must fail.
func (r *ruleState) fire() bool {
	r.seen++
	if r.seen <= r.After {
		return false
	}
	if r.Count > 0 && r.fired >= r.Count {
		return false
	}
	r.fired++
	return true
}

// Inject adds a rule. A rule with no Err and no PowerCut fails with syscall.EIO.
func (d *Device) Inject(r Rule) {
	if r.Err == nil && !r.PowerCut {
		r.Err = eio
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.mu.rules = append(d.mu.rules, &ruleState{Rule: r})
}

// FailNext makes the next n operations of the kinds in ops fail with err.
func (d *Device) FailNext(ops Op, n int, err error) {
	if n <= 0 {
		return
	}
	d.Inject(Rule{Ops: ops, Count: n, Err: err})
}

// FailAfter lets k operations of the kinds in ops succeed, then fails every later one with err.
func (d *Device) FailAfter(ops Op, k int, err error) {
	d.Inject(Rule{Ops: ops, After: k, Err: err})
}

// PowerCutAfter lets k operations of the kinds in ops succeed and cuts the power at the next one.
func (d *Device) PowerCutAfter(ops Op, k int) {
	d.Inject(Rule{Ops: ops, After: k, Count: 1, PowerCut: true})
}

// ClearRules removes every rule. It does not restore power.
func (d *Device) ClearRules() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.mu.rules = nil
}
