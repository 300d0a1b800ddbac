package v1alpha1

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestNodeVolumeIDIsTheUIDNotTheName(t *testing.T) {
	tests := []struct {
		name string
		meta metav1.ObjectMeta
		want string
	}{
		{name: "uid", meta: metav1.ObjectMeta{Namespace: "ns", Name: "data", UID: "0b7e-uid"}, want: "0b7e-uid"},
		{name: "same name, new object", meta: metav1.ObjectMeta{Namespace: "ns", Name: "data", UID: "1c8f-uid"}, want: "1c8f-uid"},
		{name: "not created yet", meta: metav1.ObjectMeta{Namespace: "ns", Name: "data"}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &Volume{ObjectMeta: tt.meta}
			if got := v.NodeVolumeID(); got != tt.want {
				t.Fatalf("NodeVolumeID() = %q, want %q", got, tt.want)
			}
		})
	}
}
