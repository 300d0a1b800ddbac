package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// maxVolumeNameLength bounds the object names VolumeName and SnapshotName return: a DNS-1123
// label's length, so a name also fits a label value (the CSI volume and snapshot IDs end up in
// PersistentVolume labels, VolumeSnapshotContent status and events).
const maxVolumeNameLength = validation.DNS1123LabelMaxLength

// nameHashLength is how many hex digits of the request name's SHA-256 a derived name ends with.
const nameHashLength = 10

// VolumeName is the name of the Volume object for a CreateVolume request named requestName (not
// empty). A request name that is already a DNS-1123 subdomain of at most 63 characters, such as
// the external-provisioner's "pvc-<uid>", is used as is. Any other is lowercased, every run of
// characters other than a-z and 0-9 becomes one "-", it is cut to leave room, and a hash of the
// original name is appended, so distinct request names almost never share a Volume name (the
// caller still checks AnnotationCSIName).
func VolumeName(requestName string) string { return objectName(requestName) }

// SnapshotName is the name of the Snapshot object for a CreateSnapshot request named
// requestName (not empty), derived as VolumeName derives a Volume's: the external-snapshotter's
// "snapshot-<uid>" is used as is. Snapshots and Volumes are different kinds, so a snapshot and a
// volume may share a name.
func SnapshotName(requestName string) string { return objectName(requestName) }

// objectName derives an object name from a CSI request name (see VolumeName).
func objectName(requestName string) string {
	if len(requestName) <= maxVolumeNameLength && len(validation.IsDNS1123Subdomain(requestName)) == 0 {
		return requestName
	}
	sum := sha256.Sum256([]byte(requestName))
	hash := hex.EncodeToString(sum[:])[:nameHashLength]

	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(requestName) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
			continue
		}
		if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	prefix := b.String()
	if keep := maxVolumeNameLength - nameHashLength - 1; len(prefix) > keep {
		prefix = prefix[:keep]
	}
	prefix = strings.TrimRight(prefix, "-")
	if prefix == "" {
		prefix = "csi"
	}
	return prefix + "-" + hash
}
