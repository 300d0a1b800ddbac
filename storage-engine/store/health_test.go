package store

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cobaltstore/cobalt/storage-engine/kv"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// TestHealthOf: the worst cause decides the state; background errors and disk-slow reports count
// only within HealthWindow, a stall and a failed commit for as long as they last.
func TestHealthOf(t *testing.T) {
	now := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	recent, old := now.Add(-time.Minute), now.Add(-HealthWindow-time.Second)
	flushErr := errors.New("flush: injected")
	tests := []struct {
		name      string
		kv        kv.Health
		commitErr error
		state     HealthState
		reason    string
		inMessage string
	}{
		{"nothing happened", kv.Health{}, nil, HealthOK, "", ""},
		{"recent background error", kv.Health{BackgroundErrors: 3, LastError: flushErr, LastErrorTime: recent}, nil, HealthDegraded, ReasonMetadataBackgroundErrors, "3 metadata background errors"},
		{"old background error", kv.Health{BackgroundErrors: 3, LastError: flushErr, LastErrorTime: old}, nil, HealthOK, "", ""},
		{"recent disk slow", kv.Health{DiskSlow: 2, LastDiskSlowTime: recent}, nil, HealthDegraded, ReasonMetadataDiskSlow, "2 reports"},
		{"old disk slow", kv.Health{DiskSlow: 2, LastDiskSlowTime: old}, nil, HealthOK, "", ""},
		{"stalled", kv.Health{WriteStalls: 1, Stalled: true}, nil, HealthDegraded, ReasonMetadataWriteStalled, "stalled"},
		{"stall over", kv.Health{WriteStalls: 1}, nil, HealthOK, "", ""},
		{"stall beats errors", kv.Health{Stalled: true, WriteStalls: 1, BackgroundErrors: 1, LastError: flushErr, LastErrorTime: recent}, nil, HealthDegraded, ReasonMetadataWriteStalled, "1 background errors"},
		{"corruption", kv.Health{DataCorruptions: 1, LastError: flushErr, LastErrorTime: old}, nil, HealthFailed, ReasonMetadataCorruption, "injected"},
		{"failed commit beats all", kv.Health{DataCorruptions: 1, Stalled: true}, errors.New("wal: sync failed"), HealthFailed, ReasonCommitFailed, "wal: sync failed"},
		{"stuck metadata database", kv.Health{}, fmt.Errorf("%w: %w: sync: input/output error", ErrFailed, kv.ErrStuck), HealthFailed, ReasonMetadataDeviceFailed, "the device under the metadata failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := healthOf(tc.kv, tc.commitErr, now)
			if h.State != tc.state || h.Reason != tc.reason {
				t.Fatalf("state %s reason %q, want %s %q (message %q)", h.State, h.Reason, tc.state, tc.reason, h.Message)
			}
			if tc.state == HealthOK && h.Message != "" || !strings.Contains(h.Message, tc.inMessage) {
				t.Fatalf("message %q, want one containing %q", h.Message, tc.inMessage)
			}
			if h.KV != tc.kv {
				t.Fatalf("KV %+v, want %+v", h.KV, tc.kv)
			}
		})
	}
}

// TestStoreHealthSeesFailedFlush: a mounted store whose metadata flushes fail turns Degraded
// (MetadataBackgroundErrors), its KV events reach Options.KVEvents, and it is OK on a fresh mount.
// The metadata is in a directory here, so errorfs can fail only the creation of sstables.
func TestStoreHealthSeesFailedFlush(t *testing.T) {
	e := newDirEnv(t, nil, Options{}, MkfsOptions{})
	var failing atomic.Bool
	e.opts.FS = errorfs.Wrap(e.fs, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if failing.Load() && op.Kind == errorfs.OpCreate && strings.HasSuffix(op.Path, ".sst") {
			return errorfs.ErrInjected
		}
		return nil
	}))
	events := make(chan kv.Event, 1024)
	e.opts.KVEvents = func(ev kv.Event) {
		select {
		case events <- ev:
		default:
		}
	}
	s := e.open(t)
	if h := s.Health(); h.State != HealthOK {
		t.Fatalf("fresh store: %+v", h)
	}
	txn := NewTransaction()
	txn.CreateCollection("c")
	commit(t, s, txn)
	failing.Store(true)
	flushed, err := s.db.AsyncFlush()
	if err != nil {
		t.Fatal(err)
	}
	timeout := time.After(20 * time.Second)
wait:
	for {
		select {
		case ev := <-events:
			if ev.Kind == kv.EventBackgroundError {
				break wait
			}
		case <-timeout:
			t.Fatal("no background error event")
		}
	}
	if h := s.Health(); h.State != HealthDegraded || h.Reason != ReasonMetadataBackgroundErrors || !strings.Contains(h.Message, "injected") {
		t.Fatalf("store with failing flushes: %+v", h)
	}
	failing.Store(false)
	<-flushed
}
