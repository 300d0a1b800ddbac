package controllers

import (
	"fmt"
	"slices"
	"strings"
	"time"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
)

// Moving the copies of a replicated Volume (the pure decisions; the phases are in
// volume_replica_move_phases.go).
//
// A copy moves to another Store in two cases:
//   - replacement: the copy has been Lost (its Store missing or not Ready) for at least the
//     replacement delay. Its Store is swapped for a new one in spec, the new copy is created
//     empty (CatchingUp: the node serving the volume rebuilds it from the in-sync copies) and
//     the Lost copy is retired at once: it holds nothing the others do not.
//   - drain: the copy is InSync on a Store whose admin state is out. Its Store is swapped for a
//     new one in spec as well, but the old copy stays listed in status.replicas (the serving
//     node keeps writing it) until the copies in spec are all InSync; only then is it retired.
//
// A move needs another InSync copy to rebuild from (never the one moving), and one drain at a
// time per Volume, so status.replicas holds at most replicas + 1 entries. One copy moves per
// spec update (the API refuses more).

// moveKind says why a copy moves.
type moveKind int

const (
	moveNone moveKind = iota
	// moveReplace replaces a copy Lost for longer than the replacement delay.
	moveReplace
	// moveDrain moves an InSync copy off a Store set out.
	moveDrain
)

// plannedMove is the copy to move now, if any, and why.
type plannedMove struct {
	Kind moveKind
	// Store is the Store of the copy that moves.
	Store string
	// LostSince is when the replaced copy became Lost (moveReplace only).
	LostSince time.Time
	// Wait is how long until a Lost copy is due for replacement, when one is waiting and none
	// moves now; zero otherwise.
	Wait time.Duration
	// Blocked says why a copy that should move cannot: no other copy is in sync to rebuild it
	// from. Empty otherwise.
	Blocked string
}

// planMove picks the copy of vol to move now, from the copies this reconcile observed (copies,
// in PlacedStores order) and vol's status. A Lost copy is due once it has been Lost for delay;
// a copy on a Store set out moves when it is InSync, no other copy is moving away already, and
// every copy of the Volume was created. Replacements come before drains. A copy moves only
// when another copy is InSync on a usable Store (the new copy is rebuilt from it).
func planMove(vol *storagev1alpha1.Volume, copies []copyObservation, now time.Time, delay time.Duration) plannedMove {
	var p plannedMove
	outgoing := false
	for _, e := range vol.Status.Replicas {
		if !slices.Contains(vol.PlacedStores(), e.Store) {
			outgoing = true
		}
	}
	allCreated := true
	for i := range copies {
		if e := findReplica(vol.Status.Replicas, copies[i].StoreName); e == nil || e.State == storagev1alpha1.ReplicaPending {
			allCreated = false
		}
	}
	var drain string
	for i := range copies {
		c := copies[i]
		e := findReplica(vol.Status.Replicas, c.StoreName)
		if e == nil {
			continue
		}
		switch {
		case e.State == storagev1alpha1.ReplicaLost && !c.usable() && e.LostSince != nil:
			due := e.LostSince.Add(delay)
			if now.Before(due) {
				if w := due.Sub(now); p.Wait == 0 || w < p.Wait {
					p.Wait = w
				}
				continue
			}
			if !otherInSync(vol, copies, c.StoreName) {
				p.Blocked = fmt.Sprintf("the copy on store %s has been Lost since %s, but no other copy is in sync to rebuild a replacement from",
					c.StoreName, e.LostSince.UTC().Format(time.RFC3339))
				continue
			}
			return plannedMove{Kind: moveReplace, Store: c.StoreName, LostSince: e.LostSince.Time}
		case drain == "" && !outgoing && allCreated && e.State == storagev1alpha1.ReplicaInSync && c.usable() &&
			c.Store.Spec.AdminState == storagev1alpha1.AdminStateOut && otherInSync(vol, copies, c.StoreName):
			drain = c.StoreName
		}
	}
	if drain != "" {
		return plannedMove{Kind: moveDrain, Store: drain}
	}
	return p
}

// otherInSync reports whether a copy of vol other than the one on store is InSync on a usable
// Store: one listed in spec (copies) or one moving away.
func otherInSync(vol *storagev1alpha1.Volume, copies []copyObservation, store string) bool {
	for i := range copies {
		c := copies[i]
		if c.StoreName == store || !c.usable() {
			continue
		}
		if e := findReplica(vol.Status.Replicas, c.StoreName); e != nil && e.State == storagev1alpha1.ReplicaInSync {
			return true
		}
	}
	return false
}

// formerStores are the Stores holding a copy of v that is no longer in spec: moving away
// (listed in status.replicas) or retired and not deleted yet (status.retiredReplicas).
func formerStores(v *storagev1alpha1.Volume) []string {
	placed := v.PlacedStores()
	var out []string
	for _, e := range v.Status.Replicas {
		if !slices.Contains(placed, e.Store) {
			out = append(out, e.Store)
		}
	}
	for _, e := range v.Status.RetiredReplicas {
		if !slices.Contains(out, e.Store) && !slices.Contains(placed, e.Store) {
			out = append(out, e.Store)
		}
	}
	return out
}

// holdingStores are every Store that holds, or is to hold, a copy of v: those in spec, those
// moving away and those with a retired copy not deleted yet. A new copy never goes to one of
// them (the copies of a volume share its node volume ID, so one Store holds at most one).
func holdingStores(v *storagev1alpha1.Volume) []string {
	return append(v.PlacedStores(), formerStores(v)...)
}

// chooseMoveTarget picks the Store for a copy of vol that moves off the Store moving: the best
// candidate (eligibleStores, best first) that holds no copy of vol, is spread from the copies
// that stay (distinct node, then distinct zone; a node that holds one of them only with
// allowSameNode), as chooseReplicaPlacement places copies. Message says why there is none.
func chooseMoveTarget(vol *storagev1alpha1.Volume, loads []storeLoad, moving string, now time.Time, timeout time.Duration) (string, string, error) {
	fits, rejected, largestFree, err := eligibleStores(vol, loads, now, timeout)
	if err != nil {
		return "", "", err
	}
	holding := holdingStores(vol)
	candidates := fits[:0:0]
	for _, l := range fits {
		if !slices.Contains(holding, l.Store.Name) {
			candidates = append(candidates, l)
		}
	}
	sortByPreference(candidates)
	var staying []storeLoad
	for _, name := range vol.PlacedStores() {
		if name == moving {
			continue
		}
		if l, ok := findLoad(loads, name); ok {
			staying = append(staying, l)
		}
	}
	sameNode := vol.Spec.ReplicaPlacement != nil && vol.Spec.ReplicaPlacement.AllowSameNode
	if next, ok := bestSpreadCandidate(candidates, staying, sameNode); ok {
		return next.Store.Name, "", nil
	}
	held := 0
	for _, l := range loads {
		if slices.Contains(holding, l.Store.Name) {
			held++
		}
	}
	msg := fmt.Sprintf("no Store can take a copy of %s in place of the one on store %s: %d Stores considered, %d hold a copy already",
		vol.Spec.Size.String(), moving, len(loads), held)
	if parts := rejectionParts(rejected, largestFree); len(parts) > 0 {
		msg += ", " + strings.Join(parts, ", ")
	}
	if len(candidates) > 0 {
		msg += ", " + countNoun(len(candidates), "other is", "others are") + " on a node that holds a copy"
		if !sameNode {
			msg += " (spec.replicaPlacement.allowSameNode would allow them)"
		}
	}
	return "", msg, nil
}

// retirement is a copy leaving status.replicas now.
type retirement struct {
	Store, Node string
	// Why says why it is retired, for the ReplicaRetired event.
	Why string
}

// copiesToRetire returns the copies of vol listed in status.replicas but no longer in spec that
// are retired now. A copy moving away is kept while it is InSync on a usable Store (outgoing
// holds what this reconcile saw of those Stores) and fewer than replicas of the copies in spec
// (copies) are InSync on usable Stores: the serving node keeps writing it meanwhile, and the
// last InSync copy is never retired. Any other such copy (replaced, no longer in sync, its
// Store gone) is retired.
func copiesToRetire(vol *storagev1alpha1.Volume, copies, outgoing []copyObservation) []retirement {
	placedInSync := 0
	for i := range copies {
		if e := findReplica(vol.Status.Replicas, copies[i].StoreName); e != nil && e.State == storagev1alpha1.ReplicaInSync && copies[i].usable() {
			placedInSync++
		}
	}
	want := int(max(vol.Spec.Replicas, 1))
	var out []retirement
	for _, e := range vol.Status.Replicas {
		if slices.Contains(vol.PlacedStores(), e.Store) {
			continue
		}
		usable := false
		for i := range outgoing {
			if outgoing[i].StoreName == e.Store {
				usable = outgoing[i].usable()
			}
		}
		r := retirement{Store: e.Store, Node: e.Node}
		switch {
		case e.State == storagev1alpha1.ReplicaInSync && usable && placedInSync < want:
			continue
		case e.State == storagev1alpha1.ReplicaInSync && usable:
			r.Why = fmt.Sprintf("the copy on store %s moved: the %d copies on stores %v are in sync", e.Store, placedInSync, vol.PlacedStores())
		case e.State == storagev1alpha1.ReplicaLost || !usable:
			r.Why = fmt.Sprintf("the copy on store %s was replaced: it is lost", e.Store)
		default:
			r.Why = fmt.Sprintf("the copy on store %s no longer counts: it is %s and its Store left spec", e.Store, e.State)
		}
		out = append(out, r)
	}
	return out
}
