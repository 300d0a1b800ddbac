package controllers

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
)

// Names and labels of what a StorageCluster creates.
const (
	nodeDaemonContainer = "node-daemon"
	devMountPath        = "/dev"
	labelAppName        = "app.kubernetes.io/name"
	labelAppInstance    = "app.kubernetes.io/instance"
	labelAppManagedBy   = "app.kubernetes.io/managed-by"
	nodeDaemonAppName   = "cobalt-node-daemon"
	managedByValue      = "cobalt-operator"
	// defaultStateDir matches the API default of spec.nodeDaemon.stateDir.
	defaultStateDir = "/var/lib/cobalt"
	// nodeDaemonGracePeriod gives the node daemon time to flush deferred writes and unmount.
	nodeDaemonGracePeriod = int64(60)
	// CASecretName is the Secret in a StorageCluster's namespace that holds the node API's CA
	// (keys ca.crt and ca.key); the node daemon issues its serving certificate from it.
	CASecretName = "cobalt-ca"
	// Ports of the node daemon: the mTLS gRPC API, Prometheus metrics, and health probes.
	nodeDaemonGRPCPort    = int32(9443)
	nodeDaemonMetricsPort = int32(8080)
	nodeDaemonProbePort   = int32(8081)
)

// nodeDaemonName is the name of the DaemonSet and ServiceAccount of a cluster's node daemon.
func nodeDaemonName(cluster *storagev1alpha1.StorageCluster) string {
	return boundedName(cluster.Name+"-node-daemon", 63)
}

// nodeDaemonClusterRoleName names the cluster-scoped ClusterRole and ClusterRoleBinding of a
// cluster's node daemon; namespace and name together make it unique.
func nodeDaemonClusterRoleName(cluster *storagev1alpha1.StorageCluster) string {
	return boundedName("cobalt-node-daemon-"+cluster.Namespace+"-"+cluster.Name, 253)
}

// boundedName returns s, or when longer than limit a prefix of it plus a hash of the whole, so
// that distinct long names stay distinct.
func boundedName(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	h := hex.EncodeToString(sum[:])[:10]
	return strings.TrimRight(s[:limit-11], "-.") + "-" + h
}

// nodeDaemonLabels select a cluster's node daemon pods.
func nodeDaemonLabels(cluster *storagev1alpha1.StorageCluster) map[string]string {
	return map[string]string{
		labelAppName:      nodeDaemonAppName,
		labelAppInstance:  boundedName(cluster.Name, 63),
		labelAppManagedBy: managedByValue,
	}
}

func ownerReference(cluster *storagev1alpha1.StorageCluster) *metav1ac.OwnerReferenceApplyConfiguration {
	return metav1ac.OwnerReference().
		WithAPIVersion(storagev1alpha1.GroupVersion.String()).
		WithKind("StorageCluster").
		WithName(cluster.Name).
		WithUID(cluster.UID).
		WithController(true).
		WithBlockOwnerDeletion(true)
}

// desiredServiceAccount is the node daemon's ServiceAccount, owned by the cluster.
func desiredServiceAccount(cluster *storagev1alpha1.StorageCluster) *corev1ac.ServiceAccountApplyConfiguration {
	return corev1ac.ServiceAccount(nodeDaemonName(cluster), cluster.Namespace).
		WithLabels(nodeDaemonLabels(cluster)).
		WithOwnerReferences(ownerReference(cluster))
}

// desiredClusterRole is what the node daemon may do: create and heartbeat its Stores, read its
// node, read Volumes and write their status (the node serving a replicated volume records which
// copies are in sync), and record events. Cluster-scoped objects cannot be owned by a namespaced cluster, so the
// StorageCluster's finalizer deletes it.
func desiredClusterRole(cluster *storagev1alpha1.StorageCluster) *rbacv1ac.ClusterRoleApplyConfiguration {
	group := storagev1alpha1.GroupVersion.Group
	return rbacv1ac.ClusterRole(nodeDaemonClusterRoleName(cluster)).
		WithLabels(nodeDaemonLabels(cluster)).
		WithRules(
			rbacv1ac.PolicyRule().WithAPIGroups(group).WithResources("stores").
				WithVerbs("get", "list", "watch", "create", "update", "patch"),
			rbacv1ac.PolicyRule().WithAPIGroups(group).WithResources("stores/status").
				WithVerbs("get", "update", "patch"),
			rbacv1ac.PolicyRule().WithAPIGroups(group).WithResources("volumes").
				WithVerbs("get", "list", "watch"),
			rbacv1ac.PolicyRule().WithAPIGroups(group).WithResources("volumes/status").
				WithVerbs("get", "update", "patch"),
			rbacv1ac.PolicyRule().WithAPIGroups("").WithResources("nodes").WithVerbs("get"),
			rbacv1ac.PolicyRule().WithAPIGroups("events.k8s.io").WithResources("events").WithVerbs("create", "patch"),
		)
}

// desiredClusterRoleBinding binds desiredClusterRole to the node daemon's ServiceAccount.
func desiredClusterRoleBinding(cluster *storagev1alpha1.StorageCluster) *rbacv1ac.ClusterRoleBindingApplyConfiguration {
	name := nodeDaemonClusterRoleName(cluster)
	return rbacv1ac.ClusterRoleBinding(name).
		WithLabels(nodeDaemonLabels(cluster)).
		WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup("rbac.authorization.k8s.io").WithKind("ClusterRole").WithName(name)).
		WithSubjects(rbacv1ac.Subject().WithKind("ServiceAccount").WithName(nodeDaemonName(cluster)).WithNamespace(cluster.Namespace))
}

// desiredCARole is the node daemon's Role in its cluster's namespace: it may get the CA Secret
// (to issue its serving certificate) and its own StorageCluster (its devices and engine settings,
// read once at start), and nothing else there. Both are named (resourceNames), so the daemon
// cannot read other Secrets or other clusters; it neither lists nor watches them.
func desiredCARole(cluster *storagev1alpha1.StorageCluster) *rbacv1ac.RoleApplyConfiguration {
	return rbacv1ac.Role(nodeDaemonName(cluster), cluster.Namespace).
		WithLabels(nodeDaemonLabels(cluster)).
		WithOwnerReferences(ownerReference(cluster)).
		WithRules(
			rbacv1ac.PolicyRule().WithAPIGroups("").WithResources("secrets").
				WithResourceNames(CASecretName).WithVerbs("get"),
			rbacv1ac.PolicyRule().WithAPIGroups(storagev1alpha1.GroupVersion.Group).WithResources("storageclusters").
				WithResourceNames(cluster.Name).WithVerbs("get"))
}

// desiredCARoleBinding binds desiredCARole to the node daemon's ServiceAccount.
func desiredCARoleBinding(cluster *storagev1alpha1.StorageCluster) *rbacv1ac.RoleBindingApplyConfiguration {
	name := nodeDaemonName(cluster)
	return rbacv1ac.RoleBinding(name, cluster.Namespace).
		WithLabels(nodeDaemonLabels(cluster)).
		WithOwnerReferences(ownerReference(cluster)).
		WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup("rbac.authorization.k8s.io").WithKind("Role").WithName(name)).
		WithSubjects(rbacv1ac.Subject().WithKind("ServiceAccount").WithName(name).WithNamespace(cluster.Namespace))
}

// desiredCASecret is the copy of the operator's CA in the cluster's namespace. It has no owner:
// several clusters of one namespace share it, and the last one deleted removes it.
func desiredCASecret(cluster *storagev1alpha1.StorageCluster, data map[string][]byte) *corev1ac.SecretApplyConfiguration {
	return corev1ac.Secret(CASecretName, cluster.Namespace).
		WithLabels(map[string]string{labelAppName: "cobalt-ca", labelAppManagedBy: managedByValue}).
		WithType(corev1.SecretTypeOpaque).
		WithData(data)
}

// usesBlockDevices is true when the cluster's devices are real block devices under /dev, which
// need a privileged container; a file-backed device does not.
func usesBlockDevices(cluster *storagev1alpha1.StorageCluster) bool {
	return cluster.Spec.Devices.File == nil
}

// needsPrivilege is true when the node daemon must run privileged with the host's /dev: to open
// raw block devices, or to serve the CSI node plugin, which attaches loop devices and formats
// and mounts them for Pods, whatever the cluster's own devices are.
func needsPrivilege(cluster *storagev1alpha1.StorageCluster, csi CSINodePlugin) bool {
	return usesBlockDevices(cluster) || csi.Enabled
}

// nodeDaemonArgs is the node daemon's command line: its contract with the operator. It names the
// StorageCluster, by name and by UID, and the node; the daemon reads its devices and engine
// settings from the StorageCluster's spec when it starts (its Role may get that object), so they
// are not here, and specHash in the pod template rolls the daemons when they change. The UID is
// the cluster's identity, which the daemon records in the label of every store it makes: a daemon
// refuses to start when the StorageCluster it reads has another UID (it was deleted and created
// again), and never mounts a store whose label names another cluster.
func nodeDaemonArgs(cluster *storagev1alpha1.StorageCluster) []string {
	args := []string{
		"--cluster-namespace=" + cluster.Namespace,
		"--cluster-name=" + cluster.Name,
	}
	if cluster.UID != "" {
		args = append(args, "--cluster-uid="+string(cluster.UID))
	}
	return append(args,
		"--node-name=$(NODE_NAME)",
		"--state-dir="+stateDirOf(cluster),
		"--ca-secret="+CASecretName,
	)
}

func stateDirOf(cluster *storagev1alpha1.StorageCluster) string {
	if cluster.Spec.NodeDaemon.StateDir != "" {
		return cluster.Spec.NodeDaemon.StateDir
	}
	return defaultStateDir
}

// caHashAnnotation on the node daemon's pod template holds caHash of the node API's CA, so that
// a new CA rolls the daemons: each issues its serving certificate from the CA when it starts, and
// the operator's client certificate would not verify against one from an older CA.
const caHashAnnotation = "storage.cobalt.io/ca-sha256"

// caHash identifies a CA certificate (PEM): the hex SHA-256 of its bytes, cut to 16 characters.
func caHash(certPEM []byte) string {
	sum := sha256.Sum256(certPEM)
	return hex.EncodeToString(sum[:])[:16]
}

// specHashAnnotation on the node daemon's pod template holds specHash of the cluster, so that a
// change of its devices or engine settings rolls the daemons: each reads them from the
// StorageCluster once, when it starts, and they are not in its command line.
const specHashAnnotation = "storage.cobalt.io/spec-sha256"

// specHash identifies what the node daemon reads from its StorageCluster at start, spec.devices
// and spec.engine: the hex SHA-256 of their JSON, cut to 16 characters. The API server fills in
// the defaults before the operator sees the spec, and quantities are hashed by value, so equal
// settings hash equal however they were written ("1Gi" or "1073741824").
func specHash(cluster *storagev1alpha1.StorageCluster) (string, error) {
	devs, engine := *cluster.Spec.Devices.DeepCopy(), *cluster.Spec.Engine.DeepCopy()
	if devs.File != nil {
		devs.File.Size = *resource.NewQuantity(devs.File.Size.Value(), resource.BinarySI)
	}
	engine.MemoryTarget = *resource.NewQuantity(engine.MemoryTarget.Value(), resource.BinarySI)
	b, err := json.Marshal(struct {
		Devices storagev1alpha1.DeviceSelection `json:"devices"`
		Engine  storagev1alpha1.EngineSettings  `json:"engine"`
	}{devs, engine})
	if err != nil {
		return "", fmt.Errorf("hash the devices and engine of storage cluster %s/%s: %w", cluster.Namespace, cluster.Name, err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:16], nil
}

// desiredDaemonSet is the node daemon's DaemonSet running image, for the node API's CA whose
// caHash is ca, serving the CSI node plugin as csi says. Any change of the cluster's spec that
// matters to the daemon (its devices and engine through specHash), of the CA, or of the CSI
// settings (in the arguments and volumes) changes the pod template, so the DaemonSet rolls, one
// node at a time.
func desiredDaemonSet(cluster *storagev1alpha1.StorageCluster, image, ca string, csi CSINodePlugin) (*appsv1ac.DaemonSetApplyConfiguration, error) {
	labels := nodeDaemonLabels(cluster)
	stateDir := stateDirOf(cluster)
	spec, err := specHash(cluster)
	if err != nil {
		return nil, err
	}

	container := corev1ac.Container().
		WithName(nodeDaemonContainer).
		WithImage(image).
		WithArgs(append(nodeDaemonArgs(cluster), csi.args()...)...).
		WithEnv(
			corev1ac.EnvVar().WithName("NODE_NAME").
				WithValueFrom(corev1ac.EnvVarSource().WithFieldRef(corev1ac.ObjectFieldSelector().WithFieldPath("spec.nodeName"))),
			// The daemon advertises its pod IP in its Stores' endpoint annotation and certificate.
			corev1ac.EnvVar().WithName("POD_IP").
				WithValueFrom(corev1ac.EnvVarSource().WithFieldRef(corev1ac.ObjectFieldSelector().WithFieldPath("status.podIP")))).
		WithPorts(
			corev1ac.ContainerPort().WithName("grpc").WithContainerPort(nodeDaemonGRPCPort),
			corev1ac.ContainerPort().WithName("metrics").WithContainerPort(nodeDaemonMetricsPort),
			corev1ac.ContainerPort().WithName("probes").WithContainerPort(nodeDaemonProbePort)).
		// The daemon serves /healthz (alive) and /readyz (its Stores are open) on the probe port.
		WithLivenessProbe(corev1ac.Probe().
			WithHTTPGet(corev1ac.HTTPGetAction().WithPath("/healthz").WithPort(intstr.FromString("probes"))).
			WithPeriodSeconds(20).WithFailureThreshold(3)).
		WithReadinessProbe(corev1ac.Probe().
			WithHTTPGet(corev1ac.HTTPGetAction().WithPath("/readyz").WithPort(intstr.FromString("probes"))).
			WithPeriodSeconds(10)).
		WithVolumeMounts(corev1ac.VolumeMount().WithName("state").WithMountPath(stateDir))
	if p := cluster.Spec.NodeDaemon.ImagePullPolicy; p != "" {
		container.WithImagePullPolicy(p)
	}
	if r := cluster.Spec.NodeDaemon.Resources; len(r.Limits) > 0 || len(r.Requests) > 0 {
		rr := corev1ac.ResourceRequirements()
		if len(r.Limits) > 0 {
			rr.WithLimits(r.Limits)
		}
		if len(r.Requests) > 0 {
			rr.WithRequests(r.Requests)
		}
		container.WithResources(rr)
	}

	volumes := []*corev1ac.VolumeApplyConfiguration{
		corev1ac.Volume().WithName("state").WithHostPath(
			corev1ac.HostPathVolumeSource().WithPath(stateDir).WithType(corev1.HostPathDirectoryOrCreate)),
	}
	csiMounts, csiVolumes := csi.volumes()
	container.WithVolumeMounts(csiMounts...)
	volumes = append(volumes, csiVolumes...)
	if needsPrivilege(cluster, csi) {
		// Opening raw block devices with O_DIRECT, attaching loop devices and mounting need the
		// host's /dev and device cgroup access (and Bidirectional propagation needs privilege).
		container.WithSecurityContext(corev1ac.SecurityContext().WithPrivileged(true).WithRunAsUser(0))
		container.WithVolumeMounts(corev1ac.VolumeMount().WithName("dev").WithMountPath(devMountPath))
		volumes = append(volumes, corev1ac.Volume().WithName("dev").WithHostPath(
			corev1ac.HostPathVolumeSource().WithPath(devMountPath).WithType(corev1.HostPathDirectory)))
	} else {
		// A file-backed device without the CSI node plugin needs only the state directory,
		// which root owns on the host.
		container.WithSecurityContext(corev1ac.SecurityContext().
			WithPrivileged(false).
			WithAllowPrivilegeEscalation(false).
			WithReadOnlyRootFilesystem(true).
			WithRunAsUser(0).
			WithCapabilities(corev1ac.Capabilities().WithDrop("ALL")))
	}

	pod := corev1ac.PodSpec().
		WithServiceAccountName(nodeDaemonName(cluster)).
		WithTerminationGracePeriodSeconds(nodeDaemonGracePeriod).
		WithContainers(container).
		WithVolumes(volumes...)
	if len(cluster.Spec.NodeSelector) > 0 {
		pod.WithNodeSelector(cluster.Spec.NodeSelector)
	}
	for _, t := range cluster.Spec.Tolerations {
		pod.WithTolerations(tolerationApply(t))
	}

	template := corev1ac.PodTemplateSpec().WithLabels(labels).
		WithAnnotations(map[string]string{caHashAnnotation: ca, specHashAnnotation: spec}).WithSpec(pod)
	th, err := templateHash(template)
	if err != nil {
		return nil, err
	}
	template.WithAnnotations(map[string]string{templateHashAnnotation: th})
	// OnDelete: the operator restarts the node daemons itself, one at a time and only where that
	// leaves every replicated Volume an in-sync copy (reconcileRollout).
	return appsv1ac.DaemonSet(nodeDaemonName(cluster), cluster.Namespace).
		WithLabels(labels).
		WithOwnerReferences(ownerReference(cluster)).
		WithSpec(appsv1ac.DaemonSetSpec().
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(labels)).
			WithUpdateStrategy(appsv1ac.DaemonSetUpdateStrategy().WithType(appsv1.OnDeleteDaemonSetStrategyType)).
			WithTemplate(template)), nil
}

// templateHashAnnotation on the node daemon's pod template holds templateHash of the rest of
// the template: a pod whose annotation differs from its DaemonSet's runs an older node daemon.
const templateHashAnnotation = "storage.cobalt.io/template-sha256"

// templateHash identifies a pod template: the hex SHA-256 of its JSON, cut to 16 characters.
func templateHash(t *corev1ac.PodTemplateSpecApplyConfiguration) (string, error) {
	b, err := json.Marshal(t)
	if err != nil {
		return "", fmt.Errorf("hash the node daemon's pod template: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:16], nil
}

func tolerationApply(t corev1.Toleration) *corev1ac.TolerationApplyConfiguration {
	ta := corev1ac.Toleration()
	if t.Key != "" {
		ta.WithKey(t.Key)
	}
	if t.Operator != "" {
		ta.WithOperator(t.Operator)
	}
	if t.Value != "" {
		ta.WithValue(t.Value)
	}
	if t.Effect != "" {
		ta.WithEffect(t.Effect)
	}
	if t.TolerationSeconds != nil {
		ta.WithTolerationSeconds(*t.TolerationSeconds)
	}
	return ta
}

// nodeDaemonImage is the image to run: the cluster's own, or the operator's default.
func nodeDaemonImage(cluster *storagev1alpha1.StorageCluster, defaultImage string) (string, error) {
	if cluster.Spec.NodeDaemon.Image != "" {
		return cluster.Spec.NodeDaemon.Image, nil
	}
	if defaultImage != "" {
		return defaultImage, nil
	}
	return "", fmt.Errorf("no node daemon image: set spec.nodeDaemon.image or start the operator with --node-daemon-image")
}
