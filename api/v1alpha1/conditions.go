package v1alpha1

// Condition types. Every kind reports Ready; the others are listed with the kinds that use them.
const (
	// ConditionReady is True when the object does what its spec asks: a StorageCluster has every
	// desired Store up, a Store is heartbeating and its node daemon has published the endpoint of
	// its API (AnnotationNodeEndpoint), a Volume is created on its Store.
	ConditionReady = "Ready"
	// ConditionProgressing is True on a StorageCluster while its node daemon rolls out or while it
	// is being deleted.
	ConditionProgressing = "Progressing"
	// ConditionDegraded is True on a StorageCluster when some of its Stores are down, on a Store
	// that is nearly full or whose storage engine reports itself Degraded or Failed, and on a
	// replicated Volume (replicas > 1) with fewer copies in sync than replicas.
	ConditionDegraded = "Degraded"
	// ConditionSchedulable is True on a Store that accepts new Volumes: Ready, admin state "in"
	// and an engine that has not Failed (a Degraded engine still accepts them).
	ConditionSchedulable = "Schedulable"
	// ConditionResizing is True on a Volume whose requested size is larger than what its Store
	// has allocated for it.
	ConditionResizing = "Resizing"
)

// Condition reasons of StorageCluster.
const (
	ReasonAllStoresUp = "AllStoresUp"
	ReasonStoresDown  = "StoresDown"
	ReasonNoStores    = "NoStores"
	ReasonRollingOut  = "RollingOut"
	ReasonRolledOut   = "RolledOut"
	// ReasonRolloutBlocked: node daemons run an older spec, and restarting any of them would take
	// down the last in-sync copy of a replicated Volume.
	ReasonRolloutBlocked  = "RolloutBlocked"
	ReasonDeletionBlocked = "DeletionBlocked"
	ReasonDeleting        = "Deleting"
	ReasonReconcileFailed = "ReconcileFailed"
	ReasonAsExpected      = "AsExpected"
)

// Condition reasons of Store.
const (
	ReasonHeartbeatFresh    = "HeartbeatFresh"
	ReasonHeartbeatStale    = "HeartbeatStale"
	ReasonAwaitingHeartbeat = "AwaitingHeartbeat"
	ReasonEndpointPending   = "EndpointPending"
	ReasonDeviceNotUsed     = "DeviceNotUsed"
	ReasonNearlyFull        = "NearlyFull"
	ReasonEngineDegraded    = "EngineDegraded"
	ReasonEngineFailed      = "EngineFailed"
	ReasonAdminOut          = "AdminOut"
	ReasonStoreNotReady     = "StoreNotReady"
	ReasonAcceptingVolumes  = "AcceptingVolumes"
)

// Condition reasons of Volume.
const (
	ReasonProvisioned        = "Provisioned"
	ReasonUnschedulable      = "Unschedulable"
	ReasonProvisioningFailed = "ProvisioningFailed"
	ReasonStoreMissing       = "StoreMissing"
	ReasonExpanding          = "Expanding"
	ReasonExpansionFailed    = "ExpansionFailed"
	ReasonExpanded           = "Expanded"
	ReasonDeleteFailed       = "DeleteFailed"
	// ReasonSourceNotReady: a restore or clone waits for its source Snapshot or Volume.
	ReasonSourceNotReady = "SourceNotReady"
	// ReasonSourceTooLarge: a restore or clone is smaller than its source.
	ReasonSourceTooLarge = "SourceTooLarge"
	// ReasonReplicationUnavailable: the Volume asks for several copies but the operator runs
	// without --enable-replication (replication is opt-in while it is new).
	ReasonReplicationUnavailable = "ReplicationUnavailable"
	// ReasonReplicasInSync (Degraded False): every copy is in sync.
	ReasonReplicasInSync = "ReplicasInSync"
	// ReasonReplicasNotInSync (Degraded True): some copies are not in sync; the message names
	// them and why.
	ReasonReplicasNotInSync = "ReplicasNotInSync"
	// ReasonRebuilding (Degraded True): some copies are not in sync and at least one of them is
	// CatchingUp, being resynced or rebuilt by the node serving the volume.
	ReasonRebuilding = "Rebuilding"
	// ReasonMoving (Degraded False): every copy is in sync, and one is moving to another Store
	// (its Store was set out): the new copy is being rebuilt while the old one still takes the
	// writes.
	ReasonMoving = "Moving"
)

// Condition reasons of Snapshot.
const (
	// ReasonTaken: the snapshot exists on its Store and can be restored from.
	ReasonTaken = "Taken"
	// ReasonVolumeNotReady: the source Volume does not exist or is not placed yet.
	ReasonVolumeNotReady = "VolumeNotReady"
	// ReasonSnapshotFailed: the node refused or failed the snapshot; the message says why.
	ReasonSnapshotFailed = "SnapshotFailed"
)
