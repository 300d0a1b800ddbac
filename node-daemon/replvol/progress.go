package replvol

import (
	"fmt"
	"sync"
	"time"

	"github.com/cobaltstore/cobalt/node-daemon/replica"
)

// reporter holds the latest progress of one sync, for the copy's message.
type reporter struct {
	kind, source string
	started      time.Time
	mu           sync.Mutex // guards last
	last         replica.Progress
}

func newReporter(kind, source string, started time.Time) *reporter {
	return &reporter{kind: kind, source: source, started: started}
}

// set is the sync's Progress callback; it only stores (the callback runs on the copy path).
func (r *reporter) set(p replica.Progress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last = p
}

// text is the message for the latest progress, e.g. "rebuilding from store-a since ...: 64 MiB of
// 512 MiB copied".
func (r *reporter) text() string {
	r.mu.Lock()
	p := r.last
	r.mu.Unlock()
	verb := map[string]string{KindRebuild: "rebuilding", KindResync: "resyncing"}[r.kind]
	head := fmt.Sprintf("%s from %s since %s", verb, r.source, r.started.UTC().Format(time.RFC3339))
	switch p.Phase {
	case replica.PhaseCompare:
		return fmt.Sprintf("%s: copied; comparing: %s of %s compared", head, mib(p.Done), mib(p.Total))
	case replica.PhaseInSync:
		return fmt.Sprintf("%s: copies compared equal", head)
	case replica.PhaseCopy:
		return fmt.Sprintf("%s: %s of %s copied", head, mib(p.Done), mib(p.Total))
	}
	return head + ": starting"
}

// mib formats n bytes in MiB.
func mib(n int64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
