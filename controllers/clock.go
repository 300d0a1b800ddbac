package controllers

import "time"

// Clock tells the reconcilers what time it is, so tests can control heartbeat staleness.
type Clock interface {
	Now() time.Time
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }
