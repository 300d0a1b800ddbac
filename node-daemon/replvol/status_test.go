package replvol

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/node-daemon/csinode"
	"github.com/cobaltstore/cobalt/node-daemon/replica"
)

func TestFenced(t *testing.T) {
	tests := []struct {
		name string
		att  *v1alpha1.VolumeAttachmentStatus
		want bool
	}{
		{"no attachment", nil, false},
		{"ours", &v1alpha1.VolumeAttachmentStatus{Node: "n1", Generation: 3}, false},
		{"detached, same generation", &v1alpha1.VolumeAttachmentStatus{Generation: 3}, false},
		{"older generation recorded", &v1alpha1.VolumeAttachmentStatus{Node: "n1", Generation: 2}, false},
		{"newer generation", &v1alpha1.VolumeAttachmentStatus{Node: "n1", Generation: 4}, true},
		{"detached at a newer generation", &v1alpha1.VolumeAttachmentStatus{Generation: 4}, true},
		{"another node", &v1alpha1.VolumeAttachmentStatus{Node: "n2", Generation: 3}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := fenced(tt.att, "n1", 3)
			if got := errors.Is(err, csinode.ErrFenced); got != tt.want || (err != nil) != tt.want {
				t.Fatalf("fenced = %v, want fenced %v", err, tt.want)
			}
		})
	}
}

func TestSetState(t *testing.T) {
	tests := []struct {
		name    string
		from    v1alpha1.ReplicaState
		msg     string
		to      v1alpha1.ReplicaState
		changed bool
		want    v1alpha1.ReplicaState
	}{
		{"drop an in-sync copy", v1alpha1.ReplicaInSync, "", v1alpha1.ReplicaCatchingUp, true, v1alpha1.ReplicaCatchingUp},
		{"drop a lost copy keeps Lost", v1alpha1.ReplicaLost, "", v1alpha1.ReplicaCatchingUp, false, v1alpha1.ReplicaLost},
		{"drop a catching-up copy", v1alpha1.ReplicaCatchingUp, "old", v1alpha1.ReplicaCatchingUp, false, v1alpha1.ReplicaCatchingUp},
		{"promote", v1alpha1.ReplicaCatchingUp, "rebuilding", v1alpha1.ReplicaInSync, true, v1alpha1.ReplicaInSync},
		{"promote an in-sync copy", v1alpha1.ReplicaInSync, "", v1alpha1.ReplicaInSync, false, v1alpha1.ReplicaInSync},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := v1alpha1.VolumeStatus{Replicas: []v1alpha1.VolumeReplica{{Store: "s0", State: tt.from, Message: tt.msg}}}
			if got := setState(&st, "s0", tt.to, "why"); got != tt.changed {
				t.Fatalf("changed = %v, want %v", got, tt.changed)
			}
			c := st.Replicas[0]
			if c.State != tt.want || (tt.want == v1alpha1.ReplicaInSync && c.Message != "") || (tt.changed && tt.to == v1alpha1.ReplicaCatchingUp && c.Message != "why") {
				t.Fatalf("copy = %+v", c)
			}
			if setState(&st, "missing", tt.to, "why") {
				t.Fatal("a copy that is not listed was changed")
			}
		})
	}
}

// TestDropRetriesOnConflict: a drop whose status update meets a Conflict (someone else wrote the
// Volume meanwhile) reads again and records the drop on top of the other write.
func TestDropRetriesOnConflict(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	vol := &v1alpha1.Volume{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: testVolume, UID: types.UID(testUID)}}
	base := fake.NewClientBuilder().WithScheme(scheme).WithObjects(vol).WithStatusSubresource(vol).Build()
	vol.Status.Replicas = []v1alpha1.VolumeReplica{{Store: "s0", State: v1alpha1.ReplicaInSync}, {Store: "s1", State: v1alpha1.ReplicaInSync}}
	if err := base.Status().Update(context.Background(), vol); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	cl := interceptor.NewClient(base, interceptor.Funcs{
		SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
			if calls.Add(1) == 1 { // the operator writes first
				var other v1alpha1.Volume
				if err := c.Get(ctx, client.ObjectKeyFromObject(obj), &other); err != nil {
					return err
				}
				other.Status.Conditions = []metav1.Condition{{Type: "Degraded", Status: metav1.ConditionFalse, Reason: "AllInSync", LastTransitionTime: metav1.Now()}}
				if err := c.Status().Update(ctx, &other); err != nil {
					return err
				}
			}
			return c.SubResource(sub).Update(ctx, obj, opts...)
		},
	})
	v := &Volumes{opts: Options{Client: cl, APIReader: cl, NodeName: "n1", ReplicaTimeout: time.Minute, Log: logr.Discard()}}
	b := newBackend(v, volumeRef{opts: v.opts, key: types.NamespacedName{Namespace: testNS, Name: testVolume}, uid: testUID, gen: 1})
	b.copyState(v1alpha1.VolumeReplica{Store: "s1", State: v1alpha1.ReplicaInSync})
	if err := b.DropReplica(context.Background(), "s1", "write at 0 failed"); err != nil {
		t.Fatal(err)
	}
	var got v1alpha1.Volume
	if err := base.Get(context.Background(), client.ObjectKeyFromObject(vol), &got); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 2 || len(got.Status.Conditions) != 1 || got.Status.Replicas[1].State != v1alpha1.ReplicaCatchingUp || got.Status.InSyncReplicas != 1 {
		t.Fatalf("after %d updates: status %+v; want the drop recorded over the other write", calls.Load(), got.Status)
	}
	// Gone: the drop is refused.
	if err := base.Delete(context.Background(), &got); err != nil {
		t.Fatal(err)
	}
	if err := b.DropReplica(context.Background(), "s0", "write at 0 failed"); !errors.Is(err, csinode.ErrVolumeNotFound) {
		t.Fatalf("drop on a deleted Volume = %v, want ErrVolumeNotFound", err)
	}
}

func TestProgressText(t *testing.T) {
	start := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)
	tests := []struct {
		kind string
		p    replica.Progress
		want string
	}{
		{KindRebuild, replica.Progress{}, "rebuilding from s0 since 2026-12-06T20:00:00Z: starting"},
		{KindRebuild, replica.Progress{Phase: replica.PhaseCopy, Done: 64 << 20, Total: 512 << 20}, "rebuilding from s0 since 2026-12-06T20:00:00Z: 64 MiB of 512 MiB copied"},
		{KindResync, replica.Progress{Phase: replica.PhaseCopy, Done: 1 << 19, Total: 2 << 20}, "resyncing from s0 since 2026-12-06T20:00:00Z: 0.5 MiB of 2 MiB copied"},
		{KindResync, replica.Progress{Phase: replica.PhaseCompare, Done: 1 << 20, Total: 2 << 20}, "resyncing from s0 since 2026-12-06T20:00:00Z: copied; comparing: 1 MiB of 2 MiB compared"},
		{KindRebuild, replica.Progress{Phase: replica.PhaseInSync}, "rebuilding from s0 since 2026-12-06T20:00:00Z: copies compared equal"},
	}
	for _, tt := range tests {
		r := newReporter(tt.kind, "s0", start)
		r.set(tt.p)
		if got := r.text(); got != tt.want {
			t.Errorf("text(%+v) = %q, want %q", tt.p, got, tt.want)
		}
	}
}
