package app

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/node-daemon/metrics"
)

// storeName is the Store object's name for a device of a node: "<node>-<device>", lower-case
// DNS-1123, with a hash suffix when it had to be shortened or changed.
func storeName(node, devicePath string) string {
	raw := node + "-" + filepath.Base(devicePath)
	var b strings.Builder
	for _, r := range strings.ToLower(raw) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteRune('-')
		}
	}
	name := strings.Trim(b.String(), "-")
	if name == raw && len(name) <= 63 {
		return name
	}
	sum := sha256.Sum256([]byte(node + "\x00" + devicePath))
	return strings.Trim(name[:min(len(name), 52)], "-") + "-" + hex.EncodeToString(sum[:])[:10]
}

func deviceClass(rotational bool) storagev1alpha1.DeviceClass {
	if rotational {
		return storagev1alpha1.DeviceClassHDD
	}
	return storagev1alpha1.DeviceClassSSD
}

// desiredStore is the Store object for d as the daemon creates it (spec and labels).
func desiredStore(cfg *Config, d *device) *storagev1alpha1.Store {
	class := deviceClass(d.decision.Rotational)
	return &storagev1alpha1.Store{
		ObjectMeta: metav1.ObjectMeta{
			Name: storeName(cfg.NodeName, d.decision.Path),
			Labels: map[string]string{
				storagev1alpha1.LabelClusterName:      cfg.ClusterName,
				storagev1alpha1.LabelClusterNamespace: cfg.ClusterNamespace,
				storagev1alpha1.LabelNodeName:         cfg.NodeName,
				storagev1alpha1.LabelDeviceClass:      string(class),
			},
		},
		Spec: storagev1alpha1.StoreSpec{
			Cluster:     storagev1alpha1.ClusterReference{Namespace: cfg.ClusterNamespace, Name: cfg.ClusterName},
			NodeName:    cfg.NodeName,
			DevicePath:  d.decision.Path,
			DeviceClass: class,
			AdminState:  storagev1alpha1.AdminStateIn,
		},
	}
}

// applyEndpoint sets or removes the endpoint annotation through which clients find the daemon.
func applyEndpoint(st *storagev1alpha1.Store, endpoint string) {
	if endpoint == "" {
		delete(st.Annotations, storagev1alpha1.AnnotationNodeEndpoint)
		return
	}
	if st.Annotations == nil {
		st.Annotations = map[string]string{}
	}
	st.Annotations[storagev1alpha1.AnnotationNodeEndpoint] = endpoint
}

// applyStatus writes what the daemon reports into st's status: the fields the daemon owns (uuid,
// capacity, used, cache, metadata, engineHealth, engineMessage, lastHeartbeat, notUsedReason).
// Conditions belong to the operator and are left alone. snap is nil for a device that is not used.
func applyStatus(st *storagev1alpha1.Store, reason string, snap *metrics.StoreSnapshot, now metav1.Time) {
	hb := now
	st.Status.LastHeartbeat = &hb
	applyEngineHealth(st, snap)
	if snap == nil {
		st.Status.NotUsedReason = truncate(reason, 1024)
		st.Status.Capacity, st.Status.Used, st.Status.Cache, st.Status.Metadata = nil, nil, nil, nil
		return
	}
	st.Status.NotUsedReason = ""
	st.Status.UUID = snap.UUID
	st.Status.Capacity = resource.NewQuantity(snap.TotalBytes, resource.BinarySI)
	st.Status.Used = resource.NewQuantity(snap.UsedBytes, resource.BinarySI)
	st.Status.Metadata = storeMetadata(snap)
	totals := snap.CacheTotals()
	st.Status.Cache = &storagev1alpha1.CacheSummary{
		Type:   storagev1alpha1.CacheType(snap.CacheType),
		Shards: int32(len(snap.CacheShards)),
		Hits:   totals.Hits,
		Misses: totals.Misses,
		Bytes:  resource.NewQuantity(totals.Bytes, resource.BinarySI),
	}
}

// storeMetadata is where snap's store keeps its metadata, in the API's words.
func storeMetadata(snap *metrics.StoreSnapshot) *storagev1alpha1.StoreMetadata {
	m := &storagev1alpha1.StoreMetadata{Placement: storagev1alpha1.MetadataInStateDirectory, Location: truncate(snap.MetadataLocation, 1024)}
	switch {
	case snap.MetadataDevice != "":
		m.Placement = storagev1alpha1.MetadataOnSeparateDevice
	case snap.MetadataOnDevice:
		m.Placement = storagev1alpha1.MetadataOnDevice
	}
	return m
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
