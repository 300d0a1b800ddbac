// Package controller is Cobalt's CSI controller plugin. It runs inside the operator (cmd/manager)
// and turns the external-provisioner's and external-resizer's calls into Volume objects, which
// the operator's Volume reconciler places on a Store and has the node create, grow and delete.
//
// Invariants:
//   - The Volume is the only truth: the plugin keeps no state of its own beyond the set of calls
//     in flight. Every call reads the API server directly (Options.APIReader), never a cache, so a
//     retry after a restart sees what the previous attempt did.
//   - A CSI volume ID is the name of the Volume object in Options.Namespace. The name is derived
//     from the CreateVolume request's name (VolumeName), so a retried CreateVolume finds the
//     Volume the first attempt created; the request's name is kept in the annotation
//     v1alpha1.AnnotationCSIName, and a different request name that maps to the same object is
//     refused with AlreadyExists rather than handed someone else's volume.
//   - Sizes are whole MiB (SizeGranularity): the node's volume layer needs a multiple of 4 KiB
//     and stripes by 4 MiB, but accepts any aligned size; MiB keeps sizes readable.
//   - A replicated Volume (StorageClass parameter replicas > 1, replicas.go) that the operator
//     will not place because it runs without --enable-replication (Ready=False, reason
//     ReplicationUnavailable) is deleted while still unplaced, like an Unschedulable one below,
//     and CreateVolume answers at once with FailedPrecondition and the operator's message rather
//     than waiting for its deadline: the error is final to the external-provisioner, which then
//     tracks no volume in progress. Restores and clones have one copy: a content source with
//     replicas > 1 is InvalidArgument. A Volume's accessible topology is every copy's node.
//   - A Volume that cannot be placed (Ready=False, reason Unschedulable) is deleted before
//     CreateVolume returns ResourceExhausted: it holds no data yet, so the next attempt may place
//     it elsewhere (the scheduler may pick another node), and an abandoned claim leaves nothing
//     behind. A placed Volume is never deleted by CreateVolume.
//   - Calls that wait (CreateVolume, DeleteVolume, ControllerExpandVolume) poll the API server
//     every Options.PollInterval until the Volume gets where it must or the call's context ends,
//     bounded by Options.MaxWait; then they return DeadlineExceeded (or Canceled) with what the
//     Volume's conditions say, and the sidecar retries with the same name or ID.
//   - Two calls for the same name or volume ID never run at once in one plugin: the second is
//     answered Aborted, and its sidecar retries.
//
// There is no ControllerPublishVolume: a Cobalt volume is local to the node of its Store (the
// CSIDriver object says attachRequired: false), and topology (driver.TopologyKeyNode) makes
// Kubernetes run its Pods there.
package controller
