package chart

import (
	"strings"
	"testing"
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
			want: []string{"/storageCluster/spec/devices", "maxProperties: got 2, want 1"},
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
