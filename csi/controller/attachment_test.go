package controller

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/csi/driver"
)

func attachedVolume(att *v1alpha1.VolumeAttachmentStatus) *v1alpha1.Volume {
	return &v1alpha1.Volume{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "v"},
		Status: v1alpha1.VolumeStatus{Attachment: att}}
}

func TestNextAttachment(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cur     *v1alpha1.VolumeAttachmentStatus
		want    v1alpha1.VolumeAttachmentStatus
		changed bool
		refused bool
	}{
		{name: "first attachment is generation 1", want: v1alpha1.VolumeAttachmentStatus{Node: "a", Generation: 1}, changed: true},
		{name: "same node: unchanged", cur: &v1alpha1.VolumeAttachmentStatus{Node: "a", Generation: 4},
			want: v1alpha1.VolumeAttachmentStatus{Node: "a", Generation: 4}},
		{name: "detached: next generation", cur: &v1alpha1.VolumeAttachmentStatus{Generation: 4},
			want: v1alpha1.VolumeAttachmentStatus{Node: "a", Generation: 5}, changed: true},
		{name: "attached elsewhere: refused", cur: &v1alpha1.VolumeAttachmentStatus{Node: "b", Generation: 4}, refused: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, changed, err := nextAttachment(attachedVolume(tc.cur), "a")
			if tc.refused {
				if status.Code(err) != codes.FailedPrecondition || got != nil {
					t.Fatalf("nextAttachment = %v, %v; want FailedPrecondition", got, err)
				}
				return
			}
			if err != nil || got == nil || *got != tc.want || changed != tc.changed {
				t.Fatalf("nextAttachment = %v, %v, %v; want %v, %v", got, changed, err, tc.want, tc.changed)
			}
		})
	}
}

func TestDetachedAttachment(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cur     *v1alpha1.VolumeAttachmentStatus
		node    string
		want    *v1alpha1.VolumeAttachmentStatus
		changed bool
	}{
		{name: "never attached", node: "a"},
		{name: "detached already", cur: &v1alpha1.VolumeAttachmentStatus{Generation: 3}, node: "a",
			want: &v1alpha1.VolumeAttachmentStatus{Generation: 3}},
		{name: "attached there: node cleared, generation kept", cur: &v1alpha1.VolumeAttachmentStatus{Node: "a", Generation: 3}, node: "a",
			want: &v1alpha1.VolumeAttachmentStatus{Generation: 3}, changed: true},
		{name: "attached elsewhere: left alone", cur: &v1alpha1.VolumeAttachmentStatus{Node: "b", Generation: 3}, node: "a",
			want: &v1alpha1.VolumeAttachmentStatus{Node: "b", Generation: 3}},
		{name: "no node: from wherever it is", cur: &v1alpha1.VolumeAttachmentStatus{Node: "b", Generation: 3},
			want: &v1alpha1.VolumeAttachmentStatus{Generation: 3}, changed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, changed := detachedAttachment(attachedVolume(tc.cur), tc.node)
			if changed != tc.changed || (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
				t.Fatalf("detachedAttachment = %v, %v; want %v, %v", got, changed, tc.want, tc.changed)
			}
		})
	}
}

func TestPublishContext(t *testing.T) {
	got := publishContext(&v1alpha1.VolumeAttachmentStatus{Node: "a", Generation: 12})
	if len(got) != 1 || got[driver.PublishContextGeneration] != "12" {
		t.Fatalf("publishContext = %v, want only %s=12", got, driver.PublishContextGeneration)
	}
}

func TestVolumeContextReplicas(t *testing.T) {
	for _, tc := range []struct {
		replicas int32
		want     string // "" means absent
	}{{replicas: 0}, {replicas: 1}, {replicas: 2, want: "2"}, {replicas: 3, want: "3"}} {
		vol := &v1alpha1.Volume{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "v"}, Spec: v1alpha1.VolumeSpec{Replicas: tc.replicas}}
		got, ok := (&Server{}).csiVolume(vol, nil).GetVolumeContext()[driver.ContextReplicas]
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("replicas %d: volume context %s = %q (present %v), want %q", tc.replicas, driver.ContextReplicas, got, ok, tc.want)
		}
	}
}
