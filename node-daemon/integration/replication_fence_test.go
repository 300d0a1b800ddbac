package integration

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cobaltstore/cobalt/node-daemon/csinode"
)

// TestReplicationTakeoverFencesTheOldCoordinator: a coordinator on one node writes a verified
// stream to a Volume of three copies and is then paused with its streams to the copies open; the
// attachment moves to another node at the next generation (ControllerUnpublish from the old node,
// as the csi-attacher does by force after losing a node, then ControllerPublish to the new one) and a
// coordinator there opens the Volume. Every acknowledged write of the first reads back through the
// second; when the first resumes, each of its writes, flushes and reads is refused as fenced and
// none of its writes lands on any copy, while the second keeps writing; no copy is dropped and
// the three copies compare equal to the acknowledged writes.
func TestReplicationTakeoverFencesTheOldCoordinator(t *testing.T) {
	rc := newReplCluster(t, 10*time.Minute)
	vol := rc.createVolume(t, "fenced", 3)
	oldNode, newNode := vol.Status.Replicas[0].Node, vol.Status.Replicas[1].Node
	oldGen := rc.publish(t, vol.Name, oldNode)
	oldBE := rc.open(t, rc.coordinator(t, oldNode, 500*time.Millisecond), vol, oldGen)
	t.Cleanup(func() { _ = oldBE.Close(context.Background()) }) // fails fenced: nothing to flush

	m := newModel()
	seed := uint64(time.Now().UnixNano())
	old := startStream(oldBE, m, streamOptions{tag: 1, seed: seed, stopOnError: true})
	waitAcked(t, old, 200)
	oldRes := old.stop() // the old coordinator pauses, its streams to the copies still open
	if oldRes.failed > 0 {
		t.Fatalf("the first coordinator's writes failed before the takeover: %v", oldRes.errs)
	}

	newGen := rc.takeOver(t, vol.Name, oldNode, newNode, oldGen)
	newBE := rc.open(t, rc.coordinator(t, newNode, 500*time.Millisecond), vol, newGen)
	t.Cleanup(func() { _ = newBE.Close(context.Background()) })
	verifyThroughCoordinator(t, newBE, m)

	cur := startStream(newBE, m, streamOptions{tag: 3, seed: seed + 1, stopOnError: true})
	// The old coordinator resumes: its writes go to a model of their own, since none may land.
	refused := newModel()
	resumed := startStream(oldBE, refused, streamOptions{tag: 2, seed: seed + 2, stopOnError: true})
	waitAcked(t, cur, 200)
	resumedRes := resumed.stop()
	if resumedRes.acked > 0 || resumedRes.failed != streamWriters {
		t.Fatalf("the fenced coordinator had %d writes acknowledged and %d refused, want 0 and %d", resumedRes.acked, resumedRes.failed, streamWriters)
	}
	for _, err := range resumedRes.errs {
		if !errors.Is(err, csinode.ErrFenced) {
			t.Fatalf("the old coordinator's write failed with %v, want csinode.ErrFenced", err)
		}
	}
	if err := oldBE.Flush(context.Background()); !errors.Is(err, csinode.ErrFenced) {
		t.Fatalf("the old coordinator's flush: %v, want csinode.ErrFenced", err)
	}
	if err := oldBE.ReadAt(context.Background(), make([]byte, streamBlock), 0); !errors.Is(err, csinode.ErrFenced) {
		t.Fatalf("the old coordinator's read: %v, want csinode.ErrFenced", err)
	}
	curRes := cur.stop()
	if curRes.failed > 0 {
		t.Fatalf("the new coordinator's writes failed: %v", curRes.errs)
	}
	if err := newBE.Flush(context.Background()); err != nil {
		t.Fatalf("flush: %v", err)
	}
	final := rc.volume(t, vol.Name)
	if inSyncCount(final) != 3 || final.Status.Attachment == nil || uint64(final.Status.Attachment.Generation) != newGen || final.Status.Attachment.Node != newNode {
		t.Fatalf("after the takeover: replicas %s, attachment %+v; want three InSync, attached to %s at generation %d",
			replicaSummary(final), final.Status.Attachment, newNode, newGen)
	}
	verifyThroughCoordinator(t, newBE, m)
	copies, _ := rc.compareCopies(t, vol.Name, m) // strict: the refused writes are not in m
	if copies != 3 {
		t.Fatalf("compared %d copies, want 3", copies)
	}
	if n := len(m.maybe); n > 0 {
		t.Fatalf("%d blocks have writes of unknown outcome: no write may fail outside the fenced coordinator", n)
	}
	t.Logf("fault takeover at generation 2 (old coordinator paused, then resumed): count 1, acknowledged writes verified %d (old %d, new %d), "+
		"old coordinator's writes refused as fenced %d, landed 0, lost 0, copies compared equal %d, states %s",
		oldRes.acked+curRes.acked, oldRes.acked, curRes.acked, resumedRes.failed, copies, replicaSummary(final))
}

// takeOver moves the Volume's attachment from oldNode to newNode as the csi-attacher does after
// losing oldNode (ControllerUnpublish by force, then ControllerPublish) and returns the new
// generation, which must be the next one.
func (rc *replCluster) takeOver(t *testing.T, name, oldNode, newNode string, oldGen uint64) uint64 {
	t.Helper()
	rc.unpublish(t, name, oldNode)
	gen := rc.publish(t, name, newNode)
	if gen != oldGen+1 {
		t.Fatalf("ControllerPublishVolume to %s after the detach from %s gave generation %d, want %d", newNode, oldNode, gen, oldGen+1)
	}
	return gen
}
