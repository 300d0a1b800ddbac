package v1alpha1

// NodeVolumeID is the volume's identity on the node that holds it: the Volume object's UID,
// never its name, so a Volume deleted and created again under the same name is a different
// volume on the node. The operator creates, grows and deletes the node's volume under this ID,
// the CSI controller hands it to the node plugin in the volume context, and the CLI uses it to
// read and write the volume.
func (v *Volume) NodeVolumeID() string { return string(v.UID) }
