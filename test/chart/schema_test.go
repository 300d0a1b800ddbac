package chart

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestBadValuesAreRefused: helm refuses each bad value before rendering anything, with a message
// that names the value (from values.schema.json or the templates' own checks).
func TestBadValuesAreRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values map[string]any
		want   []string
	}{
		{
			name:   "unknown top-level key (a typo)",
			values: map[string]any{"opertor": map[string]any{}},
			want:   []string{"additional properties 'opertor' not allowed"},
		},
		{
			name:   "zero replicas",
			values: map[string]any{"operator": map[string]any{"replicas": 0}},
			want:   []string{"/operator/replicas", "minimum"},
		},
		{
			name:   "pull policy not known to Kubernetes",
			values: map[string]any{"operator": map[string]any{"image": map[string]any{"repository": "x", "pullPolicy": "Sometimes"}}},
			want:   []string{"/operator/image/pullPolicy", "'Always', 'IfNotPresent', 'Never'"},
		},
		{
			name:   "heartbeat timeout that is not a duration",
			values: map[string]any{"operator": map[string]any{"heartbeatTimeout": "a minute"}},
			want:   []string{"/operator/heartbeatTimeout", "does not match pattern"},
		},
		{
			name:   "replication switch that is not a boolean",
			values: map[string]any{"operator": map[string]any{"replication": map[string]any{"enabled": "yes"}}},
			want:   []string{"/operator/replication/enabled"},
		},
		{
			name:   "replacement delay that is not a duration",
			values: map[string]any{"operator": map[string]any{"replication": map[string]any{"replacementDelay": "ten minutes"}}},
			want:   []string{"/operator/replication/replacementDelay", "does not match pattern"},
		},
		{
			name:   "unknown log level",
			values: map[string]any{"operator": map[string]any{"logLevel": "verbose"}},
			want:   []string{"/operator/logLevel"},
		},
		{
			name:   "metrics port out of range",
			values: map[string]any{"metrics": map[string]any{"port": 70000}},
			want:   []string{"/metrics/port", "maximum"},
		},
		{
			name:   "resources with a bad quantity",
			values: map[string]any{"operator": map[string]any{"resources": map[string]any{"limits": map[string]any{"memory": "lots"}}}},
			want:   []string{"/operator/resources/limits/memory"},
		},
		{
			name:   "own CA without its key",
			values: map[string]any{"nodeAPI": map[string]any{"caSecret": map[string]any{"name": "ca", "create": true, "certificate": "-----BEGIN CERTIFICATE-----"}}},
			want:   []string{"/nodeAPI/caSecret", "key"},
		},
		{
			name: "StorageCluster with two device selections",
			values: map[string]any{"storageCluster": map[string]any{"enabled": true, "spec": map[string]any{
				"devices": map[string]any{"paths": []any{"/dev/sdb"}, "nameFilter": "^sd"},
			}}},
			want: []string{"storageCluster.spec.devices must set exactly one of paths, nameFilter or file"},
		},
		{
			name: "StorageCluster with an empty device selection",
			values: map[string]any{"storageCluster": map[string]any{"enabled": true, "spec": map[string]any{
				"devices": map[string]any{},
			}}},
			want: []string{"storageCluster.spec.devices must set exactly one of paths, nameFilter or file"},
		},
		{
			name: "allowWipe with a name filter",
			values: map[string]any{"storageCluster": map[string]any{"enabled": true, "spec": map[string]any{
				"devices": map[string]any{"nameFilter": "^sd", "allowWipe": true},
			}}},
			want: []string{"storageCluster.spec.devices.allowWipe requires paths"},
		},
		{
			name: "metadataDevices with a name filter",
			values: map[string]any{"storageCluster": map[string]any{"enabled": true, "spec": map[string]any{
				"devices": map[string]any{"nameFilter": "^sd", "metadataDevices": []any{map[string]any{"path": "/dev/sdb", "device": "/dev/nvme0n1"}}},
			}}},
			want: []string{"storageCluster.spec.devices.metadataDevices requires paths"},
		},
		{
			name: "metadata device outside /dev",
			values: map[string]any{"storageCluster": map[string]any{"enabled": true, "spec": map[string]any{
				"devices": map[string]any{"paths": []any{"/dev/sdb"}, "metadataDevices": []any{map[string]any{"path": "/dev/sdb", "device": "nvme0n1"}}},
			}}},
			want: []string{"/storageCluster/spec/devices/metadataDevices/0/device", "does not match pattern"},
		},
		{
			name: "allowWipe that is not a boolean",
			values: map[string]any{"storageCluster": map[string]any{"enabled": true, "spec": map[string]any{
				"devices": map[string]any{"paths": []any{"/dev/sdb"}, "allowWipe": "yes"},
			}}},
			want: []string{"/storageCluster/spec/devices/allowWipe", "want boolean"},
		},
		{
			name:   "StorageCluster without devices",
			values: map[string]any{"storageCluster": map[string]any{"enabled": true}},
			want:   []string{"/storageCluster", "missing property 'devices'"},
		},
		{
			name: "StorageCluster device path outside /dev",
			values: map[string]any{"storageCluster": map[string]any{"enabled": true, "spec": map[string]any{
				"devices": map[string]any{"paths": []any{"/home/disk.img"}},
			}}},
			want: []string{"/storageCluster/spec/devices/paths/0", "does not match pattern"},
		},
		{
			name: "StorageCluster with an unknown cache type",
			values: map[string]any{"storageCluster": map[string]any{"enabled": true, "spec": map[string]any{
				"devices": map[string]any{"nameFilter": "^nvme"}, "engine": map[string]any{"cacheType": "arc"},
			}}},
			want: []string{"/storageCluster/spec/engine/cacheType", "'2q', 'lru'"},
		},
		{
			name:   "StorageClass with an unknown file system",
			values: map[string]any{"storageClasses": []any{map[string]any{"name": "cobalt", "fsType": "btrfs"}}},
			want:   []string{"/storageClasses/0/fsType", "'ext4', 'xfs'"},
		},
		{
			name:   "StorageClass with an unknown binding mode",
			values: map[string]any{"storageClasses": []any{map[string]any{"name": "cobalt", "volumeBindingMode": "Lazy"}}},
			want:   []string{"/storageClasses/0/volumeBindingMode", "'WaitForFirstConsumer', 'Immediate'"},
		},
		{
			name:   "StorageClass that recycles",
			values: map[string]any{"storageClasses": []any{map[string]any{"name": "cobalt", "reclaimPolicy": "Recycle"}}},
			want:   []string{"/storageClasses/0/reclaimPolicy"},
		},
		{
			name:   "StorageClass without a name",
			values: map[string]any{"storageClasses": []any{map[string]any{"fsType": "ext4"}}},
			want:   []string{"/storageClasses/0", "missing property 'name'"},
		},
		{
			name:   "StorageClass named against DNS rules",
			values: map[string]any{"storageClasses": []any{map[string]any{"name": "Cobalt_Fast"}}},
			want:   []string{"/storageClasses/0/name", "does not match pattern"},
		},
		{
			name:   "StorageClass with a misspelled setting",
			values: map[string]any{"storageClasses": []any{map[string]any{"name": "cobalt", "fstype": "ext4"}}},
			want:   []string{"/storageClasses/0", "additional properties 'fstype' not allowed"},
		},
		{
			name:   "relative kubelet directory",
			values: map[string]any{"csi": map[string]any{"kubeletDir": "var/lib/kubelet"}},
			want:   []string{"/csi/kubeletDir", "does not match pattern"},
		},
		{
			name:   "kubelet directory with a trailing slash",
			values: map[string]any{"csi": map[string]any{"kubeletDir": "/var/lib/kubelet/"}},
			want:   []string{"/csi/kubeletDir", "does not match pattern"},
		},
		{
			name:   "sidecar image without a pinned tag",
			values: map[string]any{"csi": map[string]any{"resizer": map[string]any{"image": map[string]any{"tag": ""}}}},
			want:   []string{"/csi/resizer/image/tag", "does not match pattern"},
		},
		{
			name: "two default StorageClasses (template check)",
			values: map[string]any{"storageClasses": []any{
				map[string]any{"name": "a", "isDefault": true}, map[string]any{"name": "b", "isDefault": true}}},
			want: []string{"storageClasses: at most one class may set isDefault: true"},
		},
		{
			name: "two StorageClasses of one name (template check)",
			values: map[string]any{"storageClasses": []any{
				map[string]any{"name": "cobalt"}, map[string]any{"name": "cobalt", "fsType": "xfs"}}},
			want: []string{`storageClasses: the name "cobalt" is used twice`},
		},
		{
			name:   "two replicas without leader election (template check)",
			values: map[string]any{"operator": map[string]any{"replicas": 2, "leaderElection": map[string]any{"enabled": false}}},
			want:   []string{"operator.replicas > 1 needs operator.leaderElection.enabled=true"},
		},
		{
			name:   "CA certificate that is not PEM (template check)",
			values: map[string]any{"nodeAPI": map[string]any{"caSecret": map[string]any{"name": "ca", "create": true, "certificate": "hello", "key": "world"}}},
			want:   []string{"nodeAPI.caSecret.certificate must be a PEM certificate"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, tc.values)
			if err == nil {
				t.Fatalf("helm accepted the values %v", tc.values)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not say %q:\n%v", want, err)
				}
			}
		})
	}
}

// TestStorageClusterSchemaFollowsTheCRD: every field values.schema.json describes under
// storageCluster.spec exists in the StorageCluster CRD's schema at the same path, with the same
// enum values, so the chart's early check cannot drift from what the API server enforces.
func TestStorageClusterSchemaFollowsTheCRD(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(chartDir(t), "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := json.Unmarshal(data, &values); err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	chartSpec := dig(t, values, "properties", "storageCluster", "properties", "spec")
	crd := find(t, mustRender(t, nil).crds, "CustomResourceDefinition", "storageclusters.storage.cobalt.io")
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	if len(versions) == 0 {
		t.Fatal("StorageCluster CRD has no versions")
	}
	crdSpec := dig(t, versions[0].(map[string]any), "schema", "openAPIV3Schema", "properties", "spec")
	compared := compareSchema(t, "spec", chartSpec, crdSpec)
	if compared < 8 {
		t.Errorf("compared only %d fields", compared)
	}
}

// compareSchema checks chart's properties against crd's, recursively, and counts the fields.
func compareSchema(t *testing.T, path string, chart, crd map[string]any) int {
	t.Helper()
	n := 0
	if want, ok := chart["enum"].([]any); ok {
		if got, _ := crd["enum"].([]any); !equalJSON(want, got) {
			t.Errorf("%s: values.schema.json enum %v, CRD enum %v", path, want, got)
		}
	}
	props, _ := chart["properties"].(map[string]any)
	crdProps, _ := crd["properties"].(map[string]any)
	for name, sub := range props {
		n++
		crdSub, ok := crdProps[name].(map[string]any)
		if !ok {
			t.Errorf("values.schema.json describes %s.%s, which the StorageCluster CRD does not have", path, name)
			continue
		}
		if subMap, ok := sub.(map[string]any); ok {
			n += compareSchema(t, path+"."+name, subMap, crdSub)
		}
	}
	return n
}

func dig(t *testing.T, m map[string]any, fields ...string) map[string]any {
	t.Helper()
	for _, f := range fields {
		next, ok := m[f].(map[string]any)
		if !ok {
			t.Fatalf("no %q in %v", f, fields)
		}
		m = next
	}
	return m
}
