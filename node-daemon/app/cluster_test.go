package app

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/node-daemon/devices"
)

func TestSettingsFromSpec(t *testing.T) {
	defaults := EngineConfig{CacheType: "2q", CacheShards: 0, MemoryTarget: 1 << 30, MinAllocSize: 4096,
		DeferredWriteThreshold: 64 << 10, Checksum: "crc32c"}
	paths := storagev1alpha1.DeviceSelection{Paths: []string{"/dev/sdb", "/dev/disk/by-id/nvme-x"}}
	tests := []struct {
		name    string
		spec    storagev1alpha1.StorageClusterSpec
		devices devices.Selection
		engine  EngineConfig
		err     string
	}{
		{name: "paths under the dev directory, an empty engine gets the CRD's defaults",
			spec:    storagev1alpha1.StorageClusterSpec{Devices: paths},
			devices: devices.Selection{Paths: []string{"/host/dev/sdb", "/host/dev/disk/by-id/nvme-x"}, MinSize: 64 << 20},
			engine:  defaults},
		{name: "the defaults as the API server writes them",
			spec: storagev1alpha1.StorageClusterSpec{Devices: paths, Engine: storagev1alpha1.EngineSettings{
				CacheType: "2q", CacheShards: intstr.FromString("auto"), MemoryTarget: resource.MustParse("1Gi"),
				MinAllocSize: 4096, DeferredWriteThreshold: ptr.To[int64](65536), ChecksumType: "crc32c"}},
			devices: devices.Selection{Paths: []string{"/host/dev/sdb", "/host/dev/disk/by-id/nvme-x"}, MinSize: 64 << 20},
			engine:  defaults},
		{name: "every engine setting, wiping allowed",
			spec: storagev1alpha1.StorageClusterSpec{
				Devices: storagev1alpha1.DeviceSelection{Paths: []string{"/dev/sdc"}, AllowWipe: true},
				Engine: storagev1alpha1.EngineSettings{CacheType: "lru", CacheShards: intstr.FromInt32(12),
					MemoryTarget: resource.MustParse("2Gi"), MinAllocSize: 65536, DeferredWriteThreshold: ptr.To[int64](0),
					ChecksumType: "crc32c"}},
			devices: devices.Selection{Paths: []string{"/host/dev/sdc"}, AllowWipe: true, MinSize: 64 << 20},
			engine: EngineConfig{CacheType: "lru", CacheShards: 12, MemoryTarget: 2 << 30, MinAllocSize: 65536,
				DeferredWriteThreshold: 0, Checksum: "crc32c"}},
		{name: "metadata devices",
			spec: storagev1alpha1.StorageClusterSpec{Devices: storagev1alpha1.DeviceSelection{Paths: []string{"/dev/sdb", "/dev/sdc"},
				MetadataDevices: []storagev1alpha1.MetadataDevice{{Path: "/dev/sdb", Device: "/dev/nvme0n1p1"}}}},
			devices: devices.Selection{Paths: []string{"/host/dev/sdb", "/host/dev/sdc"}, MetadataDevices: map[string]string{"/host/dev/sdb": "/host/dev/nvme0n1p1"},
				MinSize: 64 << 20},
			engine: defaults},
		{name: "metadata device of an unlisted path", spec: storagev1alpha1.StorageClusterSpec{Devices: storagev1alpha1.DeviceSelection{
			Paths: []string{"/dev/sdb"}, MetadataDevices: []storagev1alpha1.MetadataDevice{{Path: "/dev/sdc", Device: "/dev/nvme0n1"}}}}, err: `"/dev/sdc" is not listed in spec.devices.paths`},
		{name: "metadata device outside /dev", spec: storagev1alpha1.StorageClusterSpec{Devices: storagev1alpha1.DeviceSelection{
			Paths: []string{"/dev/sdb"}, MetadataDevices: []storagev1alpha1.MetadataDevice{{Path: "/dev/sdb", Device: "/dev/../etc/x"}}}}, err: "is not a device path under /dev/"},
		{name: "metadata device also a data device", spec: storagev1alpha1.StorageClusterSpec{Devices: storagev1alpha1.DeviceSelection{
			Paths: []string{"/dev/sdb", "/dev/sdc"}, MetadataDevices: []storagev1alpha1.MetadataDevice{{Path: "/dev/sdb", Device: "/dev/sdc"}}}}, err: "is also listed in spec.devices.paths"},
		{name: "shared metadata device", spec: storagev1alpha1.StorageClusterSpec{Devices: storagev1alpha1.DeviceSelection{
			Paths: []string{"/dev/sdb", "/dev/sdc"}, MetadataDevices: []storagev1alpha1.MetadataDevice{{Path: "/dev/sdb", Device: "/dev/nvme0n1"}, {Path: "/dev/sdc", Device: "/dev/nvme0n1"}}}},
			err: `"/dev/sdb" and "/dev/sdc" share the metadata device "/dev/nvme0n1"`},
		{name: "name filter",
			spec:    storagev1alpha1.StorageClusterSpec{Devices: storagev1alpha1.DeviceSelection{NameFilter: "^nvme[0-9]+n1$"}},
			devices: devices.Selection{NameFilter: "^nvme[0-9]+n1$", MinSize: 64 << 20},
			engine:  defaults},
		{name: "file device",
			spec:    storagev1alpha1.StorageClusterSpec{Devices: storagev1alpha1.DeviceSelection{File: &storagev1alpha1.FileDevice{Size: resource.MustParse("10Gi")}}},
			devices: devices.Selection{FileSize: 10 << 30, MinSize: 64 << 20},
			engine:  defaults},
		{name: "no devices", spec: storagev1alpha1.StorageClusterSpec{}, err: "exactly one of"},
		{name: "two ways", spec: storagev1alpha1.StorageClusterSpec{Devices: storagev1alpha1.DeviceSelection{
			Paths: []string{"/dev/sdb"}, NameFilter: "x"}}, err: "exactly one of"},
		{name: "path outside /dev", spec: storagev1alpha1.StorageClusterSpec{Devices: storagev1alpha1.DeviceSelection{
			Paths: []string{"/etc/passwd"}}}, err: "spec.devices.paths"},
		{name: "path escaping /dev", spec: storagev1alpha1.StorageClusterSpec{Devices: storagev1alpha1.DeviceSelection{
			Paths: []string{"/dev/../etc/passwd"}}}, err: "spec.devices.paths"},
		{name: "allowWipe with a name filter", spec: storagev1alpha1.StorageClusterSpec{Devices: storagev1alpha1.DeviceSelection{
			NameFilter: "^sd", AllowWipe: true}}, err: "allowWipe requires explicit paths"},
		{name: "bad cache type", spec: storagev1alpha1.StorageClusterSpec{Devices: paths,
			Engine: storagev1alpha1.EngineSettings{CacheType: "arc"}}, err: "spec.engine.cacheType"},
		{name: "too many shards", spec: storagev1alpha1.StorageClusterSpec{Devices: paths,
			Engine: storagev1alpha1.EngineSettings{CacheShards: intstr.FromInt32(65)}}, err: "spec.engine.cacheShards"},
		{name: "shards as another string", spec: storagev1alpha1.StorageClusterSpec{Devices: paths,
			Engine: storagev1alpha1.EngineSettings{CacheShards: intstr.FromString("8")}}, err: "spec.engine.cacheShards"},
		{name: "alloc size not a power of two", spec: storagev1alpha1.StorageClusterSpec{Devices: paths,
			Engine: storagev1alpha1.EngineSettings{MinAllocSize: 12288}}, err: "spec.engine.minAllocSize"},
		{name: "deferred threshold too large", spec: storagev1alpha1.StorageClusterSpec{Devices: paths,
			Engine: storagev1alpha1.EngineSettings{DeferredWriteThreshold: ptr.To[int64](2 << 20)}}, err: "spec.engine.deferredWriteThreshold"},
		{name: "bad checksum", spec: storagev1alpha1.StorageClusterSpec{Devices: paths,
			Engine: storagev1alpha1.EngineSettings{ChecksumType: "md5"}}, err: "spec.engine.checksumType"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SettingsFromSpec(&tt.spec, "/host/dev", 64<<20)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("SettingsFromSpec: %v", err)
			}
			if !reflect.DeepEqual(got.Devices, tt.devices) {
				t.Errorf("devices = %+v, want %+v", got.Devices, tt.devices)
			}
			if got.Engine != tt.engine {
				t.Errorf("engine = %+v, want %+v", got.Engine, tt.engine)
			}
		})
	}
}

// TestFormatGuard: a new store is made only while the StorageCluster exists and is not being
// deleted, and only when that could be confirmed.
func TestFormatGuard(t *testing.T) {
	key := types.NamespacedName{Namespace: "ns", Name: "c"}
	now := metav1.Now()
	tests := []struct {
		name   string
		reader client.Reader
		want   string
	}{
		{"live", reader{sc: &storagev1alpha1.StorageCluster{}}, ""},
		{"being deleted", reader{sc: &storagev1alpha1.StorageCluster{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now}}}, "is being deleted"},
		{"gone", reader{err: apierrors.NewNotFound(schema.GroupResource{Resource: "storageclusters"}, "c")}, "is gone"},
		{"unreadable", reader{err: errors.New("connection refused")}, "cannot confirm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := formatGuard{reader: tt.reader, key: key}.refusal(context.Background())
			if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Errorf("refusal = %q, want %q", got, tt.want)
			}
		})
	}
}

// reader answers every Get with sc or err.
type reader struct {
	sc  *storagev1alpha1.StorageCluster
	err error
}

func (r reader) Get(_ context.Context, _ client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	if r.err != nil {
		return r.err
	}
	r.sc.DeepCopyInto(obj.(*storagev1alpha1.StorageCluster))
	return nil
}

func (r reader) List(context.Context, client.ObjectList, ...client.ListOption) error {
	return errors.New("the node daemon never lists")
}
