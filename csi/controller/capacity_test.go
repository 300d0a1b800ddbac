package controller

import (
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestVolumeSize(t *testing.T) {
	const mi, gi = int64(1 << 20), int64(1 << 30)
	for _, tc := range []struct {
		name string
		r    *csi.CapacityRange
		want int64
		code codes.Code
		msg  string
	}{
		{name: "no range: default", r: nil, want: DefaultSize},
		{name: "zero range: default", r: &csi.CapacityRange{}, want: DefaultSize},
		{name: "whole MiB kept", r: &csi.CapacityRange{RequiredBytes: 10 * mi}, want: 10 * mi},
		{name: "rounded up to a MiB", r: &csi.CapacityRange{RequiredBytes: 10*mi + 1}, want: 11 * mi},
		{name: "one byte is one MiB", r: &csi.CapacityRange{RequiredBytes: 1}, want: mi},
		{name: "limit above the rounded size", r: &csi.CapacityRange{RequiredBytes: mi + 1, LimitBytes: 2 * mi}, want: 2 * mi},
		{name: "only a limit below the default", r: &csi.CapacityRange{LimitBytes: 5*mi + 7}, want: 5 * mi},
		{name: "only a limit above the default", r: &csi.CapacityRange{LimitBytes: 5 * gi}, want: DefaultSize},
		{name: "limit under the rounded size", r: &csi.CapacityRange{RequiredBytes: mi + 1, LimitBytes: mi + 100},
			code: codes.OutOfRange, msg: "rounds up to 2Mi, which is more than the limit"},
		{name: "limit under required", r: &csi.CapacityRange{RequiredBytes: 2 * mi, LimitBytes: mi}, code: codes.OutOfRange},
		{name: "limit under a MiB", r: &csi.CapacityRange{LimitBytes: 4096}, code: codes.OutOfRange},
		{name: "negative", r: &csi.CapacityRange{RequiredBytes: -1}, code: codes.InvalidArgument, msg: "negative"},
		{name: "too large", r: &csi.CapacityRange{RequiredBytes: MaxSize + 1}, code: codes.OutOfRange, msg: "largest volume"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := VolumeSize(tc.r)
			if status.Code(err) != tc.code || got != tc.want {
				t.Fatalf("VolumeSize(%v) = %d, %v; want %d, code %v", tc.r, got, err, tc.want, tc.code)
			}
			if err != nil && !strings.Contains(status.Convert(err).Message(), tc.msg) {
				t.Errorf("message %q lacks %q", status.Convert(err).Message(), tc.msg)
			}
			if err == nil && got%SizeGranularity != 0 {
				t.Errorf("size %d is not whole MiB", got)
			}
		})
	}
}
