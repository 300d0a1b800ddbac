package replica

import (
	"errors"
	"fmt"
)

// Errors of the replica layer.
var (
	// ErrStaleGeneration: a replica refused a request because it has accepted a newer attachment
	// generation; the coordinator that sent it has been replaced.
	ErrStaleGeneration = errors.New("replica: stale attachment generation")
	// ErrFenced: the coordinator was fenced off by a newer generation and serves no more I/O.
	ErrFenced = errors.New("replica: coordinator fenced by a newer generation")
	// ErrNoInSyncReplica: no replica is in sync, so no I/O can be served.
	ErrNoInSyncReplica = errors.New("replica: no in-sync replica")
	// ErrNoIntent: an in-sync replica keeps no write-intent log or could not report it, so the
	// regions where the replicas may differ are not known (compare every written extent).
	ErrNoIntent = errors.New("replica: write intent not known")
	// ErrIntentNotCleared: the write intent of the replicas could not be cleared; the marks stay
	// (the next reconcile compares more), nothing is lost.
	ErrIntentNotCleared = errors.New("replica: write intent not cleared")
)

// StaleError is a refusal for an older generation. It matches ErrStaleGeneration.
type StaleError struct {
	// Requested is the generation of the refused request, Recorded the replica's.
	Requested, Recorded uint64
}

func (e *StaleError) Error() string {
	return fmt.Sprintf("replica: request of generation %d refused: the replica has accepted generation %d (a newer coordinator took over)", e.Requested, e.Recorded)
}

// Is makes errors.Is(err, ErrStaleGeneration) match.
func (e *StaleError) Is(target error) bool { return target == ErrStaleGeneration }
