package kv

import (
	"errors"
	"log/slog"
	"math/bits"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// EventKind names what happened in pebble's background work.
type EventKind string

const (
	// EventBackgroundError: a flush, compaction or other background job failed (pebble retries
	// failed flushes; until one succeeds, memtables pile up and writes eventually stall).
	EventBackgroundError EventKind = "BackgroundError"
	// EventDataCorruption: pebble found corrupt data in one of its files.
	EventDataCorruption EventKind = "DataCorruption"
	// EventDiskSlow: a disk operation has been running for longer than DiskSlowThreshold. pebble
	// reports it every time it looks (about every two seconds) while the operation lasts.
	EventDiskSlow EventKind = "DiskSlow"
	// EventWriteStallBegin: writes are blocked until flushes or compactions catch up.
	EventWriteStallBegin EventKind = "WriteStallBegin"
	// EventWriteStallEnd: writes flow again.
	EventWriteStallEnd EventKind = "WriteStallEnd"
)

// Event is one occurrence of a failure or slowdown in pebble's background work.
type Event struct {
	Kind EventKind
	// Time is when the listener saw it.
	Time time.Time
	// Err is the failure (EventBackgroundError, EventDataCorruption), else nil.
	Err error
	// Message describes the event in words (the file and operation, the stall reason, ...).
	Message string
	// Duration is how long the slow operation had been running (EventDiskSlow), else 0.
	Duration time.Duration
}

// Health is what the listener has seen since the database was opened.
type Health struct {
	// BackgroundErrors counts failed background jobs (flushes, compactions, ...).
	BackgroundErrors uint64
	// DataCorruptions counts corruption reports.
	DataCorruptions uint64
	// DiskSlow counts disk-slow reports.
	DiskSlow uint64
	// WriteStalls counts write stalls begun; Stalled says whether one is going on now.
	WriteStalls uint64
	Stalled     bool
	// LastError is the most recent background error or corruption (nil if none), seen at
	// LastErrorTime.
	LastError     error
	LastErrorTime time.Time
	// LastDiskSlowTime is when the last disk-slow report came (zero if none).
	LastDiskSlowTime time.Time
}

// listener turns pebble's event callbacks into counters (Health), log lines and calls of the
// caller's sink. pebble calls it from its background goroutines, some with its own mutex held:
// it never blocks and never calls back into the database.
type listener struct {
	log  *slog.Logger // never nil
	sink func(Event)  // may be nil
	now  func() time.Time

	mu struct {
		sync.Mutex
		h Health
	}
}

func newListener(log *slog.Logger, sink func(Event)) *listener {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &listener{log: log, sink: sink, now: time.Now}
}

// eventListener returns the pebble callbacks that feed l.
func (l *listener) eventListener() pebble.EventListener {
	return pebble.EventListener{
		BackgroundError: func(err error) {
			l.record(Event{Kind: EventBackgroundError, Err: err, Message: err.Error()})
		},
		DataCorruption: func(info pebble.DataCorruptionInfo) {
			err := info.Details
			if err == nil {
				err = errors.New("data corruption")
			}
			l.record(Event{Kind: EventDataCorruption, Err: err, Message: info.String()})
		},
		DiskSlow: func(info pebble.DiskSlowInfo) {
			l.record(Event{Kind: EventDiskSlow, Message: info.String(), Duration: info.Duration})
		},
		WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
			l.record(Event{Kind: EventWriteStallBegin, Message: info.Reason})
		},
		WriteStallEnd: func() {
			l.record(Event{Kind: EventWriteStallEnd, Message: "writes resumed"})
		},
	}
}

// record counts ev, logs it and hands it to the sink. Repeated background errors and disk-slow
// reports are logged at the 1st, 2nd, 4th, 8th... occurrence only: pebble retries a failed flush
// at once, so a broken disk would otherwise flood the log.
func (l *listener) record(ev Event) {
	ev.Time = l.now()
	l.mu.Lock()
	h := &l.mu.h
	var n uint64
	switch ev.Kind {
	case EventBackgroundError:
		h.BackgroundErrors++
		n = h.BackgroundErrors
		h.LastError, h.LastErrorTime = ev.Err, ev.Time
	case EventDataCorruption:
		h.DataCorruptions++
		n = 1 // always logged
		h.LastError, h.LastErrorTime = ev.Err, ev.Time
	case EventDiskSlow:
		h.DiskSlow++
		n = h.DiskSlow
		h.LastDiskSlowTime = ev.Time
	case EventWriteStallBegin:
		h.WriteStalls++
		h.Stalled = true
		n = 1
	case EventWriteStallEnd:
		h.Stalled = false
		n = 1
	}
	l.mu.Unlock()
	if bits.OnesCount64(n) == 1 {
		l.logEvent(ev, n)
	}
	if l.sink != nil {
		l.sink(ev)
	}
}

func (l *listener) logEvent(ev Event, n uint64) {
	switch ev.Kind {
	case EventBackgroundError:
		l.log.Error("pebble background error", "err", ev.Err, "count", n)
	case EventDataCorruption:
		l.log.Error("pebble data corruption", "err", ev.Err, "detail", ev.Message)
	case EventDiskSlow:
		l.log.Warn("pebble disk slow", "detail", ev.Message, "duration", ev.Duration, "count", n)
	case EventWriteStallBegin:
		l.log.Warn("pebble write stall began", "reason", ev.Message)
	case EventWriteStallEnd:
		l.log.Info("pebble write stall ended")
	}
}

// health returns a copy of the counters.
func (l *listener) health() Health {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.h
}
