package v1alpha1

// Labels and annotations the CSI controller plugin (csi/controller) puts on the Volumes and
// Snapshots it creates, so that a PersistentVolumeClaim and its Volume, or a VolumeSnapshot and
// its Snapshot, can be followed both ways:
//
//	kubectl get volumes -A -l storage.cobalt.io/pvc-namespace=apps,storage.cobalt.io/pvc-name=db
//
// and `cobalt status` shows the claim each Volume backs. The claim, PV and VolumeSnapshot keys are
// used both as a label and as an annotation: the annotation always holds the full value; the
// label is set only when the value fits a label value (at most 63 characters), which a claim
// name may not.
const (
	// LabelCSIDriver marks a Volume or Snapshot created through CSI; its value is the driver's
	// name (csi.cobalt.io). ListVolumes and ListSnapshots list only objects carrying it.
	LabelCSIDriver = "storage.cobalt.io/csi-driver"
	// AnnotationCSIName is the name of the CSI CreateVolume (CreateSnapshot) request a Volume
	// (Snapshot) was created for. The object's own name is derived from it; the annotation tells
	// apart two request names that map to the same object name.
	AnnotationCSIName = "storage.cobalt.io/csi-name"
	// KeyPVCName is the name of the PersistentVolumeClaim a Volume backs.
	KeyPVCName = "storage.cobalt.io/pvc-name"
	// KeyPVCNamespace is the namespace of the PersistentVolumeClaim a Volume backs.
	KeyPVCNamespace = "storage.cobalt.io/pvc-namespace"
	// KeyPVName is the name of the PersistentVolume that refers to a Volume.
	KeyPVName = "storage.cobalt.io/pv-name"
	// KeyVolumeSnapshotName is the name of the VolumeSnapshot a Snapshot was taken for.
	KeyVolumeSnapshotName = "storage.cobalt.io/volumesnapshot-name"
	// KeyVolumeSnapshotNamespace is the namespace of the VolumeSnapshot a Snapshot was taken for.
	KeyVolumeSnapshotNamespace = "storage.cobalt.io/volumesnapshot-namespace"
	// KeyVolumeSnapshotContentName is the name of the VolumeSnapshotContent that refers to a
	// Snapshot.
	KeyVolumeSnapshotContentName = "storage.cobalt.io/volumesnapshotcontent-name"
)
