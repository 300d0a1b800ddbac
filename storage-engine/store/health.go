package store

import (
	"errors"
	"fmt"
	"time"

	"github.com/cobaltstore/cobalt/storage-engine/kv"
)

// HealthState summarizes whether the store works as it should.
type HealthState string

const (
	// HealthOK: nothing went wrong lately.
	HealthOK HealthState = "OK"
	// HealthDegraded: the store serves, but its metadata database had trouble within
	// HealthWindow (background errors, a slow disk) or its writes are stalled.
	HealthDegraded HealthState = "Degraded"
	// HealthFailed: the store refuses writes (a metadata commit failed) or its metadata is
	// corrupt; it needs an operator.
	HealthFailed HealthState = "Failed"
)

// Reasons name the cause of a health other than OK, in CamelCase (fit for a Kubernetes event).
const (
	ReasonCommitFailed             = "CommitFailed"
	ReasonMetadataDeviceFailed     = "MetadataDeviceFailed"
	ReasonMetadataCorruption       = "MetadataCorruption"
	ReasonMetadataWriteStalled     = "MetadataWriteStalled"
	ReasonMetadataBackgroundErrors = "MetadataBackgroundErrors"
	ReasonMetadataDiskSlow         = "MetadataDiskSlow"
)

// HealthWindow is how long a background error or a disk-slow report keeps the store Degraded.
const HealthWindow = 10 * time.Minute

// Health is the store's health with what it was computed from.
type Health struct {
	State HealthState
	// Reason is the cause (one of the Reason constants), empty when State is HealthOK.
	Reason string
	// Message says what happened, in words; empty when State is HealthOK.
	Message string
	// KV is what the metadata database's event listener has seen since Open.
	KV kv.Health
}

// Health reports the store's health now.
func (s *Store) Health() Health {
	var failed error
	if errp := s.failErr.Load(); errp != nil {
		failed = *errp
	}
	return healthOf(s.db.Health(), failed, time.Now())
}

// healthOf computes the health from the metadata database's health and the error that made the
// store refuse writes (nil if none) at time now. The worst cause wins.
func healthOf(h kv.Health, commitErr error, now time.Time) Health {
	out := Health{State: HealthOK, KV: h}
	recent := func(t time.Time) bool { return !t.IsZero() && now.Sub(t) < HealthWindow }
	switch {
	case errors.Is(commitErr, kv.ErrStuck):
		// The device under the metadata failed a write: the store takes none until it is
		// mounted again on a working device (stuck.go).
		out.State, out.Reason = HealthFailed, ReasonMetadataDeviceFailed
		out.Message = fmt.Sprintf("the device under the metadata failed, writes are refused until the store is mounted again: %v", commitErr)
	case commitErr != nil:
		out.State, out.Reason = HealthFailed, ReasonCommitFailed
		out.Message = fmt.Sprintf("a metadata commit failed, writes are refused: %v", commitErr)
	case h.DataCorruptions > 0:
		out.State, out.Reason = HealthFailed, ReasonMetadataCorruption
		out.Message = fmt.Sprintf("metadata database reported %d corruptions, last: %v", h.DataCorruptions, h.LastError)
	case h.Stalled:
		out.State, out.Reason = HealthDegraded, ReasonMetadataWriteStalled
		out.Message = fmt.Sprintf("metadata writes are stalled (%d stalls so far, %d background errors)", h.WriteStalls, h.BackgroundErrors)
	case recent(h.LastErrorTime):
		out.State, out.Reason = HealthDegraded, ReasonMetadataBackgroundErrors
		out.Message = fmt.Sprintf("%d metadata background errors, last at %s: %v", h.BackgroundErrors, h.LastErrorTime.UTC().Format(time.RFC3339), h.LastError)
	case recent(h.LastDiskSlowTime):
		out.State, out.Reason = HealthDegraded, ReasonMetadataDiskSlow
		out.Message = fmt.Sprintf("metadata disk slow (%d reports, last at %s)", h.DiskSlow, h.LastDiskSlowTime.UTC().Format(time.RFC3339))
	}
	return out
}
