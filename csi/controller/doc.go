// Package controller is Cobalt's CSI controller plugin. It runs inside the operator (cmd/manager)
// and turns the external-provisioner's, external-attacher's, external-resizer's and
// external-snapshotter's calls into Volume and Snapshot objects, which the operator's reconcilers
// place on a Store and have the node create, grow, snapshot and delete.
//
// Invariants:
//   - The Volume (Snapshot) is the only truth: the plugin keeps no state of its own beyond the
//     set of calls in flight. Every call reads the API server directly (Options.APIReader), never
//     a cache, so a retry after a restart sees what the previous attempt did.
//   - A CSI volume ID is the name of the Volume object in Options.Namespace, a CSI snapshot ID
//     the name of the Snapshot object there. The name is derived from the CreateVolume
//     (CreateSnapshot) request's name (VolumeName, SnapshotName), so a retry finds the object
//     the first attempt created; the request's name is kept in the annotation
//     v1alpha1.AnnotationCSIName, and a different request name that maps to the same object is
//     refused with AlreadyExists rather than handed someone else's volume or snapshot.
//   - A restore or clone (CreateVolume with a volume_content_source) is a Volume whose
//     spec.source names the Snapshot or Volume; the operator places it on its source's Store,
//     where it shares the source's data. The plugin checks before creating it that the source
//     exists (NotFound) and is ready (FailedPrecondition), that the size holds it (OutOfRange,
//     naming both sizes; no size means the source's), and that the request's requisite
//     topology allows the source's node (ResourceExhausted). A retry with another source is
//     AlreadyExists. A source is not deleted (FailedPrecondition) while a Volume made from it is
//     not created yet; once created, volumes and snapshots keep their data without each other.
//   - CreateSnapshot returns only once the node has taken the snapshot, always ready_to_use:
//     a Cobalt snapshot is usable the moment it is taken, and before that there is no point in
//     time to report. A Snapshot the node failed to take (Ready=False, SnapshotFailed) holds no
//     data: it is deleted, and the call answers with the node's message (ResourceExhausted when
//     the Store is full), so the retry takes it afresh. ListSnapshots lists taken snapshots only,
//     and GetSnapshot finds only those.
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
//     behind. So is a restore or clone whose source the operator finds too large for it
//     (SourceTooLarge, answered OutOfRange). No other Volume is deleted by CreateVolume.
//   - Calls that wait (CreateVolume, DeleteVolume, ControllerExpandVolume, CreateSnapshot,
//     DeleteSnapshot) poll the API server every Options.PollInterval until the object gets where
//     it must or the call's context ends, bounded by Options.MaxWait; then they return
//     DeadlineExceeded (or Canceled) with what the object's conditions say, and the sidecar
//     retries with the same name or ID.
//   - Two calls for the same volume (snapshot) name or ID never run at once in one plugin: the
//     second is answered Aborted, and its sidecar retries.
//   - ListVolumes and ListSnapshots page in name order; a page token names the last ID of the
//     previous page, so objects created or deleted between pages never repeat an entry, and a
//     token the plugin did not hand out is Aborted.
//   - ControllerPublishVolume and ControllerUnpublishVolume (run by the external-attacher; the
//     CSIDriver says attachRequired: true, for every volume) move a Volume's status.attachment,
//     which only they write: {node, generation}, the generation one more than the previous one
//     whenever the node changes (1 at first), kept by an unpublish, which clears the node only.
//     A volume is attached to one node at a time: a publish to another node while it is attached
//     is FailedPrecondition. The publish context carries the generation
//     (driver.PublishContextGeneration), which the replicated data path uses to fence a node
//     that lost the attachment. A single-copy volume is reachable only from its Store's node
//     (topology, driver.TopologyKeyNode, makes Kubernetes run its Pods there): a publish to
//     another node is FailedPrecondition, on its node it only records the attachment. The node
//     ID is the Kubernetes Node's name; an unknown node is NotFound. Attachment changes are
//     status patches under an optimistic lock, decided afresh after a Conflict.
//   - A replicated Volume's volume context names its number of copies (driver.ContextReplicas).
package controller
