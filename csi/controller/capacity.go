package controller

import (
	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/api/resource"
)

const (
	// SizeGranularity is the unit of Volume sizes: requests are rounded up to a whole MiB. The
	// node's volume layer needs a multiple of 4 KiB (node-daemon/volume.SizeAlignment); a MiB is
	// one, and keeps sizes readable in `kubectl get volumes`.
	SizeGranularity int64 = 1 << 20
	// DefaultSize is the size of a volume whose request says neither required nor limit bytes.
	DefaultSize int64 = 1 << 30
	// MaxSize is the largest volume the node's volume layer accepts (2^60 bytes).
	MaxSize int64 = 1 << 60
)

// roundUp rounds n up to a whole SizeGranularity.
func roundUp(n int64) int64 { return (n + SizeGranularity - 1) / SizeGranularity * SizeGranularity }

// VolumeSize is the size to create or grow a volume to for a capacity range: required_bytes
// rounded up to a whole MiB; with no required_bytes, DefaultSize, or the largest whole MiB under
// limit_bytes when that is smaller. Errors are gRPC statuses: InvalidArgument for negative bytes,
// OutOfRange when no whole MiB fits the range or the size passes MaxSize.
func VolumeSize(r *csi.CapacityRange) (int64, error) {
	required, limit := r.GetRequiredBytes(), r.GetLimitBytes()
	if required < 0 || limit < 0 {
		return 0, status.Errorf(codes.InvalidArgument, "capacity_range has negative bytes (required %d, limit %d)", required, limit)
	}
	if required > MaxSize {
		return 0, status.Errorf(codes.OutOfRange, "required %s is more than the largest volume, %s", bytesString(required), bytesString(MaxSize))
	}
	size := roundUp(required)
	if required == 0 {
		size = DefaultSize
		if limit > 0 {
			size = min(size, limit/SizeGranularity*SizeGranularity)
		}
	}
	if limit > 0 && (size > limit || size == 0) {
		return 0, status.Errorf(codes.OutOfRange,
			"capacity_range: sizes are whole MiB: required %s rounds up to %s, which is more than the limit %s",
			bytesString(required), bytesString(max(size, SizeGranularity)), bytesString(limit))
	}
	return size, nil
}

// MinXFSSize is the smallest file system mkfs.xfs makes: it refuses anything under 300 MB.
const MinXFSSize int64 = 300 << 20

// FileSystemMinimum raises size to the smallest file system that the capabilities' fs_type can
// be made with (xfs: MinXFSSize), when the capacity range allows it; when its limit does not, it
// is OutOfRange with a message saying why, so that the claim's events explain it rather than a
// failed mkfs when the Pod starts.
func FileSystemMinimum(size int64, r *csi.CapacityRange, caps []*csi.VolumeCapability) (int64, error) {
	for _, c := range caps {
		if c.GetMount() == nil || c.GetMount().GetFsType() != "xfs" || size >= MinXFSSize {
			continue
		}
		if limit := r.GetLimitBytes(); limit > 0 && limit < MinXFSSize {
			return 0, status.Errorf(codes.OutOfRange,
				"an xfs volume needs at least %s (mkfs.xfs makes no smaller file system), and the limit is %s: ask for more, or use ext4",
				bytesString(MinXFSSize), bytesString(limit))
		}
		return MinXFSSize, nil
	}
	return size, nil
}

// sizeInRange reports whether a volume of size bytes satisfies r.
func sizeInRange(size int64, r *csi.CapacityRange) bool {
	return size >= r.GetRequiredBytes() && (r.GetLimitBytes() == 0 || size <= r.GetLimitBytes())
}

// bytesString renders n bytes the way Kubernetes quantities read, e.g. "10Gi", or "1500" when not
// a whole binary unit.
func bytesString(n int64) string { return resource.NewQuantity(n, resource.BinarySI).String() }
