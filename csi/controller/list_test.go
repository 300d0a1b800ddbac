package controller

import (
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

func TestListPage(t *testing.T) {
	vols := func(names ...string) []v1alpha1.Volume {
		var out []v1alpha1.Volume
		for _, n := range names {
			out = append(out, v1alpha1.Volume{ObjectMeta: metav1.ObjectMeta{Name: n}})
		}
		return out
	}
	namesOf := func(vs []v1alpha1.Volume) []string {
		var out []string
		for _, v := range vs {
			out = append(out, v.Name)
		}
		return out
	}
	for _, tc := range []struct {
		name      string
		vols      []v1alpha1.Volume
		after     string
		limit     int
		want      []string
		wantToken string
	}{
		{name: "all, sorted", vols: vols("c", "a", "b"), want: []string{"a", "b", "c"}},
		{name: "first page", vols: vols("c", "a", "b"), limit: 2, want: []string{"a", "b"}, wantToken: "after/b"},
		{name: "last page", vols: vols("c", "a", "b"), after: "b", limit: 2, want: []string{"c"}},
		{name: "after a deleted volume", vols: vols("a", "c", "d"), after: "b", limit: 1, want: []string{"c"}, wantToken: "after/c"},
		{name: "exactly a page", vols: vols("a", "b"), limit: 2, want: []string{"a", "b"}},
		{name: "past the end", vols: vols("a"), after: "z", want: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			page, token := listPage(tc.vols, volumeObjectName, tc.after, tc.limit)
			if got := namesOf(page); !slices.Equal(got, tc.want) || token != tc.wantToken {
				t.Errorf("listPage = %v, %q; want %v, %q", got, token, tc.want, tc.wantToken)
			}
		})
	}
}

func TestParseToken(t *testing.T) {
	if after, err := parseToken("after/pvc-1", "ListVolumes"); err != nil || after != "pvc-1" {
		t.Errorf("parseToken(after/pvc-1) = %q, %v", after, err)
	}
	if after, err := parseToken("", "ListVolumes"); err != nil || after != "" {
		t.Errorf("parseToken(\"\") = %q, %v", after, err)
	}
	for _, bad := range []string{"invalid-token", "after/", "after/UPPER", "pvc-1"} {
		if _, err := parseToken(bad, "ListVolumes"); status.Code(err) != codes.Aborted {
			t.Errorf("parseToken(%q) = %v, want Aborted", bad, err)
		}
	}
}
