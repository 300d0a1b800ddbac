package app

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/node-daemon/devices"
)

// EngineConfig are the storage engine settings of the StorageCluster (spec.engine), with the
// API's defaults filled in.
type EngineConfig struct {
	CacheType              string
	CacheShards            int // 0 = auto
	MemoryTarget           int64
	MinAllocSize           int
	DeferredWriteThreshold int64
	Checksum               string
}

// ClusterSettings are what the daemon takes from its StorageCluster's spec when it starts.
type ClusterSettings struct {
	// Devices is spec.devices, its paths found under Config.DevDir.
	Devices devices.Selection
	// Engine is spec.engine.
	Engine EngineConfig
	// ClusterID identifies the cluster: the StorageCluster's UID (metadata.uid), which the daemon
	// records in the label of every store it makes or adopts and compares with the label of every
	// store it finds. Set by loadSettings from the object it read; SettingsFromSpec leaves it zero.
	ClusterID [16]byte
}

// The defaults of spec.engine, the same as the CRD's (+kubebuilder:default markers in
// api/v1alpha1/engine_types.go). The API server applies them on create; the daemon applies them
// again for fields that are unset anyway, so that it never depends on how an object was stored.
const (
	defaultCacheType              = storagev1alpha1.CacheType2Q
	defaultMemoryTarget           = int64(1 << 30)
	defaultMinAllocSize           = int64(4096)
	defaultDeferredWriteThreshold = int64(64 << 10)
	defaultChecksum               = storagev1alpha1.ChecksumCRC32C
	maxCacheShards                = 64
	maxDeferredWriteThreshold     = int64(1 << 20)
)

// SettingsFromSpec converts a StorageCluster's spec into the daemon's settings: the one place
// where spec.devices and spec.engine become devices.Selection and EngineConfig. Device paths
// (all under /dev/) are looked up in devDir; minDeviceSize is the smallest usable device. Values
// the API would refuse are refused here as well, with the field's name.
func SettingsFromSpec(spec *storagev1alpha1.StorageClusterSpec, devDir string, minDeviceSize int64) (ClusterSettings, error) {
	sel, err := selectionFromSpec(spec.Devices, devDir)
	if err != nil {
		return ClusterSettings{}, err
	}
	sel.MinSize = minDeviceSize
	eng, err := engineFromSpec(spec.Engine)
	if err != nil {
		return ClusterSettings{}, err
	}
	return ClusterSettings{Devices: sel, Engine: eng}, nil
}

func selectionFromSpec(d storagev1alpha1.DeviceSelection, devDir string) (devices.Selection, error) {
	var sel devices.Selection
	for _, p := range d.Paths {
		host, ok := hostDevicePath(devDir, p)
		if !ok {
			return sel, fmt.Errorf("spec.devices.paths: %q is not a device path under /dev/", p)
		}
		sel.Paths = append(sel.Paths, host)
	}
	sel.NameFilter = d.NameFilter
	if d.File != nil {
		if sel.FileSize = d.File.Size.Value(); sel.FileSize <= 0 {
			return sel, fmt.Errorf("spec.devices.file.size %s must be positive", d.File.Size.String())
		}
	}
	set := 0
	for _, isSet := range []bool{len(sel.Paths) > 0, sel.NameFilter != "", sel.FileSize > 0} {
		if isSet {
			set++
		}
	}
	if set != 1 {
		return sel, fmt.Errorf("spec.devices must set exactly one of paths, nameFilter or file (%d are set)", set)
	}
	if d.AllowWipe && len(sel.Paths) == 0 {
		return sel, errors.New("spec.devices.allowWipe requires explicit paths")
	}
	sel.AllowWipe = d.AllowWipe
	if len(d.MetadataDevices) > 0 {
		m, err := metadataDevicesFromSpec(d, devDir)
		if err != nil {
			return sel, err
		}
		sel.MetadataDevices = m
	}
	return sel, nil
}

// hostDevicePath is where the node daemon finds p, a device path under /dev/ (no "..") as the
// API admits them, under devDir; ok is false for any other path.
func hostDevicePath(devDir, p string) (string, bool) {
	rel, ok := strings.CutPrefix(p, "/dev/")
	if !ok || rel == "" || strings.Contains(p, "..") {
		return "", false
	}
	return filepath.Join(devDir, rel), true
}

// metadataDevicesFromSpec maps spec.devices.metadataDevices into devDir, refusing what the API
// refuses: keys not in paths, values outside /dev/, a metadata device also in paths or shared.
func metadataDevicesFromSpec(d storagev1alpha1.DeviceSelection, devDir string) (map[string]string, error) {
	out := make(map[string]string, len(d.MetadataDevices))
	used := map[string]string{}
	for _, md := range d.MetadataDevices {
		p, m := md.Path, md.Device
		if !slices.Contains(d.Paths, p) {
			return nil, fmt.Errorf("spec.devices.metadataDevices: %q is not listed in spec.devices.paths", p)
		}
		host, _ := hostDevicePath(devDir, p) // a listed path, checked by selectionFromSpec
		if _, dup := out[host]; dup {
			return nil, fmt.Errorf("spec.devices.metadataDevices: %q is listed twice", p)
		}
		hostMeta, ok := hostDevicePath(devDir, m)
		if !ok {
			return nil, fmt.Errorf("spec.devices.metadataDevices: the metadata device %q of %q is not a device path under /dev/", m, p)
		}
		if slices.Contains(d.Paths, m) {
			return nil, fmt.Errorf("spec.devices.metadataDevices: the metadata device %q of %q is also listed in spec.devices.paths", m, p)
		}
		if other, ok := used[m]; ok {
			return nil, fmt.Errorf("spec.devices.metadataDevices: %q and %q share the metadata device %q", min(p, other), max(p, other), m)
		}
		used[m] = p
		out[host] = hostMeta
	}
	return out, nil
}

func engineFromSpec(e storagev1alpha1.EngineSettings) (EngineConfig, error) {
	var errs []error
	out := EngineConfig{
		CacheType:              string(defaultCacheType),
		MemoryTarget:           defaultMemoryTarget,
		MinAllocSize:           int(defaultMinAllocSize),
		DeferredWriteThreshold: defaultDeferredWriteThreshold,
		Checksum:               string(defaultChecksum),
	}
	switch e.CacheType {
	case "":
	case storagev1alpha1.CacheType2Q, storagev1alpha1.CacheTypeLRU:
		out.CacheType = string(e.CacheType)
	default:
		errs = append(errs, fmt.Errorf("spec.engine.cacheType %q must be 2q or lru", e.CacheType))
	}
	// The zero IntOrString (the integer 0) is an unset field: auto, like the string "auto".
	switch s := e.CacheShards; {
	case s.Type == intstr.String && s.StrVal == storagev1alpha1.CacheShardsAuto:
	case s.Type == intstr.Int && s.IntVal == 0:
	case s.Type == intstr.Int && s.IntVal >= 1 && s.IntVal <= maxCacheShards:
		out.CacheShards = int(s.IntVal)
	default:
		errs = append(errs, fmt.Errorf("spec.engine.cacheShards %q must be auto or a number from 1 to %d", s.String(), maxCacheShards))
	}
	if !e.MemoryTarget.IsZero() {
		if out.MemoryTarget = e.MemoryTarget.Value(); out.MemoryTarget < 0 {
			errs = append(errs, fmt.Errorf("spec.engine.memoryTarget %s must be positive", e.MemoryTarget.String()))
		}
	}
	if e.MinAllocSize != 0 {
		if m := e.MinAllocSize; m < 4096 || m > 65536 || m&(m-1) != 0 {
			errs = append(errs, fmt.Errorf("spec.engine.minAllocSize %d must be a power of two from 4096 to 65536", m))
		}
		out.MinAllocSize = int(e.MinAllocSize)
	}
	if t := e.DeferredWriteThreshold; t != nil {
		if *t < 0 || *t > maxDeferredWriteThreshold {
			errs = append(errs, fmt.Errorf("spec.engine.deferredWriteThreshold %d must be from 0 to %d", *t, maxDeferredWriteThreshold))
		}
		out.DeferredWriteThreshold = *t
	}
	switch e.ChecksumType {
	case "":
	case storagev1alpha1.ChecksumCRC32C:
		out.Checksum = string(e.ChecksumType)
	default:
		errs = append(errs, fmt.Errorf("spec.engine.checksumType %q must be crc32c", e.ChecksumType))
	}
	return out, errors.Join(errs...)
}

// readCluster reads the daemon's StorageCluster from the API server (not a cache: the daemon's
// RBAC allows get on that one object, not list or watch). Its errors say what the daemon needs
// the object for and what happens next.
func readCluster(ctx context.Context, r client.Reader, key types.NamespacedName) (*storagev1alpha1.StorageCluster, error) {
	sc := &storagev1alpha1.StorageCluster{}
	err := r.Get(ctx, key, sc)
	switch {
	case err == nil:
		return sc, nil
	case apierrors.IsNotFound(err):
		return nil, fmt.Errorf("StorageCluster %s does not exist: the node daemon takes its devices and engine settings from it (--cluster-namespace, --cluster-name): %w", key, err)
	case apierrors.IsForbidden(err):
		return nil, fmt.Errorf("not allowed to read StorageCluster %s: the operator gives the daemon's ServiceAccount a Role that may get it: %w", key, err)
	default:
		return nil, fmt.Errorf("read StorageCluster %s: %w", key, err)
	}
}

// formatGuard decides, just before each new store is made, whether the StorageCluster still
// wants new stores: not when it is being deleted or gone, nor when that cannot be confirmed.
type formatGuard struct {
	reader client.Reader
	key    types.NamespacedName
}

// refusal returns "" when a new store may be made now, else why not (the device's not-used
// reason).
func (g formatGuard) refusal(ctx context.Context) string {
	sc := &storagev1alpha1.StorageCluster{}
	err := g.reader.Get(ctx, g.key, sc)
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Sprintf("StorageCluster %s is gone: no new store is made", g.key)
	case err != nil:
		return fmt.Sprintf("cannot confirm that StorageCluster %s is not being deleted (%v): no new store is made", g.key, err)
	case !sc.DeletionTimestamp.IsZero():
		return fmt.Sprintf("StorageCluster %s is being deleted: no new store is made", g.key)
	}
	return ""
}
