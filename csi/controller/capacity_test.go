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

func TestFileSystemMinimum(t *testing.T) {
	mount := func(fs string) []*csi.VolumeCapability {
		return []*csi.VolumeCapability{{AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: fs}}}}
	}
	block := []*csi.VolumeCapability{{AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}}}
	for _, tc := range []struct {
		name  string
		size  int64
		limit int64
		caps  []*csi.VolumeCapability
		want  int64
		code  codes.Code
	}{
		{name: "ext4 small stays", size: 64 << 20, caps: mount("ext4"), want: 64 << 20},
		{name: "default fs stays", size: 64 << 20, caps: mount(""), want: 64 << 20},
		{name: "block stays", size: 64 << 20, caps: block, want: 64 << 20},
		{name: "xfs small grows", size: 128 << 20, caps: mount("xfs"), want: MinXFSSize},
		{name: "xfs small grows within limit", size: 128 << 20, limit: 1 << 30, caps: mount("xfs"), want: MinXFSSize},
		{name: "xfs large stays", size: 1 << 30, caps: mount("xfs"), want: 1 << 30},
		{name: "xfs limit too low", size: 128 << 20, limit: 256 << 20, caps: mount("xfs"), code: codes.OutOfRange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FileSystemMinimum(tc.size, &csi.CapacityRange{RequiredBytes: tc.size, LimitBytes: tc.limit}, tc.caps)
			if status.Code(err) != tc.code || (err == nil && got != tc.want) {
				t.Fatalf("FileSystemMinimum = %d, %v; want %d, code %v", got, err, tc.want, tc.code)
			}
		})
	}
}
