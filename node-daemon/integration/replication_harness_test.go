package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/go-logr/logr/testr"
	"github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/controllers"
	"github.com/cobaltstore/cobalt/controllers/nodeapi"
	"github.com/cobaltstore/cobalt/csi/controller"
	"github.com/cobaltstore/cobalt/csi/driver"
	"github.com/cobaltstore/cobalt/node-daemon/app"
	nodeclient "github.com/cobaltstore/cobalt/node-daemon/client"
	"github.com/cobaltstore/cobalt/node-daemon/csinode"
	"github.com/cobaltstore/cobalt/node-daemon/internal/eiodev"
	"github.com/cobaltstore/cobalt/node-daemon/objstore"
	"github.com/cobaltstore/cobalt/node-daemon/pki"
	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
	"github.com/cobaltstore/cobalt/node-daemon/replica"
	"github.com/cobaltstore/cobalt/node-daemon/replvol"
	"github.com/cobaltstore/cobalt/node-daemon/volume"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/store"
)

const (
	// replNodes is how many node daemons a replication cluster runs: three copies and a spare
	// Store for a replacement.
	replNodes = 4
	// replDeviceName is the one device path of the StorageCluster's spec; each daemon finds its
	// own device under that name in its own DevDir (a symlink to its loop device or file).
	replDeviceName = "cobalt-repl"
	replDeviceSize = 256 << 20
	replVolumeSize = 32 << 20
	// replHeartbeatTimeout makes a stopped or killed daemon's Store not Ready (its copies Lost)
	// within seconds; the daemons heartbeat every 250 ms.
	replHeartbeatTimeout = 3 * time.Second
	// replReplicaTimeout bounds one operation on one copy: a stopped daemon's copy is dropped
	// after it.
	replReplicaTimeout = 5 * time.Second
)

// replNode is one node daemon, running as a process, with its own device and node name.
type replNode struct {
	name    string
	device  string // the loop device (or sparse file) its DevDir's symlink points to
	backing string // the loop device's backing file (device itself when it is a file; "" for eio)
	// eio, when not nil, is the device: a loop device served by this process through FUSE that
	// fails with EIO when its switch is flipped (package eiodev).
	eio  *eiodev.Device
	cfg  *app.Config
	proc *proc
}

// replCluster is a namespace with its StorageCluster, replNodes node daemons as processes and the
// operator's Store and Volume reconcilers (replication enabled) in this process.
type replCluster struct {
	*cluster
	nodes []*replNode
	// csi is the CSI controller service, which moves a Volume's attachment.
	csi *controller.Server
}

// newReplCluster starts the daemons and the operator; replacementDelay is the operator's
// --replica-replacement-delay.
func newReplCluster(t *testing.T, replacementDelay time.Duration) *replCluster {
	t.Helper()
	return newReplClusterEIO(t, replacementDelay, 0)
}

// newReplClusterEIO is newReplCluster with the devices of the last eioNodes nodes made by
// newEIODevice (root only).
func newReplClusterEIO(t *testing.T, replacementDelay time.Duration, eioNodes int) *replCluster {
	t.Helper()
	rc := &replCluster{cluster: newCluster(t)}
	spec := storagev1alpha1.StorageClusterSpec{
		Devices: storagev1alpha1.DeviceSelection{Paths: []string{"/dev/" + replDeviceName}},
		Engine:  storagev1alpha1.EngineSettings{MemoryTarget: resource.MustParse("64Mi")},
	}
	sc := &storagev1alpha1.StorageCluster{ObjectMeta: metav1.ObjectMeta{Namespace: rc.namespace, Name: "test"}, Spec: spec}
	if err := k8sClient.Create(context.Background(), sc); err != nil {
		t.Fatalf("create StorageCluster: %v", err)
	}
	for i := range replNodes {
		n := &replNode{name: fmt.Sprintf("%s-n%d", rc.namespace, i)}
		if i >= replNodes-eioNodes {
			n.eio = newEIODevice(t, replDeviceSize)
			n.device = n.eio.Path()
		} else {
			n.device, n.backing = newBackedDevice(t, replDeviceSize, 0, nil)
		}
		// ControllerPublishVolume attaches only to existing Kubernetes Nodes.
		kn := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.name}}
		if err := k8sClient.Create(context.Background(), kn); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), kn) })
		devDir := t.TempDir()
		if err := os.Symlink(n.device, filepath.Join(devDir, replDeviceName)); err != nil {
			t.Fatal(err)
		}
		cfg := app.DefaultConfig()
		cfg.ClusterNamespace, cfg.ClusterName, cfg.NodeName = rc.namespace, "test", n.name
		cfg.StateDir, cfg.DevDir = t.TempDir(), devDir
		cfg.GRPCAddr, cfg.AdvertiseAddr = "127.0.0.1:0", "127.0.0.1"
		cfg.MetricsAddr, cfg.ProbeAddr = "0", "0"
		cfg.HeartbeatInterval = 250 * time.Millisecond
		cfg.ShutdownGrace = 5 * time.Second
		n.cfg = &cfg
		n.proc = startProc(t, n.cfg)
		rc.nodes = append(rc.nodes, n)
	}
	rc.startReplicatingOperator(t, replacementDelay)
	var err error
	rc.csi, err = controller.New(controller.Options{Client: k8sClient, APIReader: k8sClient, Namespace: rc.namespace,
		PollInterval: 100 * time.Millisecond, Log: testr.New(t).WithName("csi-controller")})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range rc.nodes {
		rc.readyStore(t, n)
	}
	return rc
}

// startReplicatingOperator runs the operator's Store and Volume reconcilers with replication
// enabled and the real node client.
func (rc *replCluster) startReplicatingOperator(t *testing.T, replacementDelay time.Duration) {
	t.Helper()
	nodes, err := nodeapi.New(rc.peerTLS(t, "cobalt-operator"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nodes.Close() }) // runs after the manager has stopped (last in, first out)
	runOperator(t, func(mgr ctrl.Manager) error {
		if err := (&controllers.StoreReconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("store"), Clock: clock.RealClock{},
			HeartbeatTimeout: replHeartbeatTimeout}).SetupWithManager(mgr); err != nil {
			return err
		}
		return (&controllers.VolumeReconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("volume"), Nodes: nodes, Clock: clock.RealClock{},
			HeartbeatTimeout: replHeartbeatTimeout, ReplicationEnabled: true, ReplicaReplacementDelay: replacementDelay}).SetupWithManager(mgr)
	})
}

// peerTLS is a client configuration with a certificate of the cluster's CA named name.
func (rc *replCluster) peerTLS(t *testing.T, name string) *tls.Config {
	t.Helper()
	cert, err := rc.ca.IssueClient(name, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := pki.ClientTLSConfig(cert, rc.ca.Pool(), "")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// store returns the Store of node n (its one device).
func (rc *replCluster) store(t *testing.T, n *replNode) *storagev1alpha1.Store {
	t.Helper()
	var list storagev1alpha1.StoreList
	if err := k8sClient.List(context.Background(), &list); err != nil {
		t.Fatal(err)
	}
	for i := range list.Items {
		if list.Items[i].Spec.NodeName == n.name {
			return &list.Items[i]
		}
	}
	t.Fatalf("no Store of node %s", n.name)
	return nil
}

// readyStore waits until node n's Store is Ready (served, fresh heartbeat, an endpoint).
func (rc *replCluster) readyStore(t *testing.T, n *replNode) *storagev1alpha1.Store {
	t.Helper()
	var st *storagev1alpha1.Store
	gomega.NewWithT(t).Eventually(func() error {
		var list storagev1alpha1.StoreList
		if err := k8sClient.List(context.Background(), &list); err != nil {
			return err
		}
		for i := range list.Items {
			if s := &list.Items[i]; s.Spec.NodeName == n.name {
				if !isReady(s.Status.Conditions) || s.Annotations[storagev1alpha1.AnnotationNodeEndpoint] == "" {
					return fmt.Errorf("Store %s of node %s not Ready: %s", s.Name, n.name, s.Status.NotUsedReason)
				}
				st = s
				return nil
			}
		}
		return fmt.Errorf("no Store of node %s yet", n.name)
	}, 90*time.Second, 100*time.Millisecond).Should(gomega.Succeed())
	return st
}

// nodeOfStore returns the node holding the Store named store.
func (rc *replCluster) nodeOfStore(t *testing.T, store string) *replNode {
	t.Helper()
	for _, n := range rc.nodes {
		if rc.store(t, n).Name == store {
			return n
		}
	}
	t.Fatalf("no node holds Store %s", store)
	return nil
}

// signal sends sig to node n's daemon.
func (n *replNode) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := n.proc.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %s to the daemon of %s: %v", sig, n.name, err)
	}
}

// createVolume creates a Volume of replicas copies on this cluster's Stores and waits until every
// copy is InSync; it returns the Volume.
func (rc *replCluster) createVolume(t *testing.T, name string, replicas int32) *storagev1alpha1.Volume {
	t.Helper()
	vol := &storagev1alpha1.Volume{
		ObjectMeta: metav1.ObjectMeta{Namespace: rc.namespace, Name: name},
		Spec: storagev1alpha1.VolumeSpec{
			Size:     *resource.NewQuantity(replVolumeSize, resource.BinarySI),
			Replicas: replicas,
			StoreSelector: &metav1.LabelSelector{MatchLabels: map[string]string{
				storagev1alpha1.LabelClusterNamespace: rc.namespace,
			}},
		},
	}
	if err := k8sClient.Create(context.Background(), vol); err != nil {
		t.Fatalf("create Volume: %v", err)
	}
	rc.waitVolume(t, vol.Name, "every copy InSync", func(v *storagev1alpha1.Volume) bool {
		return len(v.Status.Replicas) == int(replicas) && inSyncCount(v) == int(replicas)
	})
	return rc.volume(t, name)
}

// volume reads the Volume name.
func (rc *replCluster) volume(t *testing.T, name string) *storagev1alpha1.Volume {
	t.Helper()
	var vol storagev1alpha1.Volume
	if err := k8sClient.Get(context.Background(), types.NamespacedName{Namespace: rc.namespace, Name: name}, &vol); err != nil {
		t.Fatal(err)
	}
	return &vol
}

// waitVolume polls the Volume until cond holds (two minutes at most).
func (rc *replCluster) waitVolume(t *testing.T, name, what string, cond func(*storagev1alpha1.Volume) bool) *storagev1alpha1.Volume {
	t.Helper()
	var last *storagev1alpha1.Volume
	gomega.NewWithT(t).Eventually(func() error {
		var vol storagev1alpha1.Volume
		if err := k8sClient.Get(context.Background(), types.NamespacedName{Namespace: rc.namespace, Name: name}, &vol); err != nil {
			return err
		}
		last = &vol
		if !cond(&vol) {
			return fmt.Errorf("Volume %s: not yet %s: replicas %s, conditions %s", name, what, replicaSummary(&vol), conditionSummary(&vol))
		}
		return nil
	}, 2*time.Minute, 100*time.Millisecond).Should(gomega.Succeed())
	return last
}

// publish attaches the Volume to node through the CSI controller's ControllerPublishVolume (as
// the csi-attacher does; node must have a Kubernetes Node) and returns the attachment generation
// its publish context carries.
func (rc *replCluster) publish(t *testing.T, name, node string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := rc.csi.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: name, NodeId: node, VolumeCapability: mountCapability()})
	if err != nil {
		t.Fatalf("ControllerPublishVolume %s to %s: %v", name, node, err)
	}
	gen, err := strconv.ParseUint(resp.GetPublishContext()[driver.PublishContextGeneration], 10, 64)
	if err != nil {
		t.Fatalf("ControllerPublishVolume %s to %s: publish context %v: %v", name, node, resp.GetPublishContext(), err)
	}
	return gen
}

// unpublish detaches the Volume from node through ControllerUnpublishVolume (as the csi-attacher
// does once the node's VolumeAttachment is deleted, by force after the node was lost).
func (rc *replCluster) unpublish(t *testing.T, name, node string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := rc.csi.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: name, NodeId: node}); err != nil {
		t.Fatalf("ControllerUnpublishVolume %s from %s: %v", name, node, err)
	}
}

func mountCapability() *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: "ext4"}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	}
}

// coordinator returns replvol.Volumes for node, running in this process with every copy reached
// over the node API with a peer certificate (as the coordinator's node daemon reaches the copies
// on other nodes); syncInterval is how often it looks for copies to resync or rebuild. It never
// scrubs.
func (rc *replCluster) coordinator(t *testing.T, node string, syncInterval time.Duration) *replvol.Volumes {
	t.Helper()
	return rc.scrubbingCoordinator(t, node, syncInterval, 0)
}

// scrubbingCoordinator is coordinator with a scrub of each open volume every scrubInterval (0:
// never).
func (rc *replCluster) scrubbingCoordinator(t *testing.T, node string, syncInterval, scrubInterval time.Duration) *replvol.Volumes {
	t.Helper()
	v, err := replvol.New(replvol.Options{
		Client:         k8sClient,
		APIReader:      k8sClient,
		NodeName:       node,
		Node:           replica.NewNode(noLocalStores{}),
		Local:          func(string) bool { return false },
		Dialer:         replvol.NodeAPIDialer{TLS: rc.peerTLS(t, node)},
		SyncInterval:   syncInterval,
		ScrubInterval:  scrubInterval,
		ReplicaTimeout: replReplicaTimeout,
		Log:            testr.New(t).WithName("coordinator-" + node),
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// open opens the Volume through v at generation gen.
func (rc *replCluster) open(t *testing.T, v *replvol.Volumes, vol *storagev1alpha1.Volume, gen uint64) csinode.ReplicatedBackend {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	be, size, err := v.Open(ctx, csinode.ReplicatedOpen{Volume: vol.Namespace + "/" + vol.Name, VolumeUID: string(vol.UID), Generation: gen})
	if err != nil {
		t.Fatalf("open %s at generation %d: %v", vol.Name, gen, err)
	}
	if size < replVolumeSize {
		t.Fatalf("open %s: size %d, want at least %d", vol.Name, size, replVolumeSize)
	}
	return be
}

// noLocalStores: the coordinator in the test process holds no store of its own.
type noLocalStores struct{}

func (noLocalStores) VolumeManager(storeUUID string) (*volume.Manager, error) {
	return nil, fmt.Errorf("the test's coordinator holds no store (asked for %s): %w", storeUUID, objstore.ErrNotFound)
}

// readCopy reads the whole copy of vol on Store store directly from its node daemon.
func (rc *replCluster) readCopy(t *testing.T, vol *storagev1alpha1.Volume, store string) []byte {
	t.Helper()
	data, err := rc.readCopyAt(t, vol, store, 0, replVolumeSize)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// readCopyAt reads length bytes at off of the copy of vol on Store store directly from its node
// daemon (one connection, closed before it returns: soaks read copies hundreds of times).
func (rc *replCluster) readCopyAt(t *testing.T, vol *storagev1alpha1.Volume, store string, off, length int64) ([]byte, error) {
	t.Helper()
	n := rc.nodeOfStore(t, store)
	st := rc.store(t, n)
	cl, err := nodeclient.Dial(st.Annotations[storagev1alpha1.AnnotationNodeEndpoint], rc.peerTLS(t, "test-client"))
	if err != nil {
		t.Fatalf("dial the node daemon of %s: %v", n.name, err)
	}
	defer cl.Close()
	var buf bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ref := &nodepb.VolumeRef{StoreUuid: st.Status.UUID, VolumeId: string(vol.UID)}
	if _, err := cl.ReadTo(ctx, ref, off, length, &buf); err != nil {
		return nil, fmt.Errorf("read [%d, +%d) of the copy on %s (node %s): %w", off, length, store, n.name, err)
	}
	return buf.Bytes(), nil
}

// compareCopies reads every InSync copy of the Volume and fails unless they are all equal to
// each other and to the model; it returns how many copies it compared and how many blocks of
// failed writes landed (on every copy, since they are equal).
func (rc *replCluster) compareCopies(t *testing.T, name string, m *model) (copies, landed int) {
	t.Helper()
	vol := rc.volume(t, name)
	var first []byte
	var firstStore string
	for _, c := range vol.Status.Replicas {
		if c.State != storagev1alpha1.ReplicaInSync {
			continue
		}
		data := rc.readCopy(t, vol, c.Store)
		if first == nil {
			first, firstStore = data, c.Store
		} else if diff := m.differences(first, data, 8); diff != "" {
			t.Fatalf("copies on %s and %s differ (copies %s): %s", firstStore, c.Store, replicaSummary(vol), diff)
		}
		l, err := m.verify(data)
		if err != nil {
			t.Fatalf("copy on %s: %v", c.Store, err)
		}
		copies, landed = copies+1, l
	}
	return copies, landed
}

func inSyncCount(v *storagev1alpha1.Volume) int {
	n := 0
	for _, c := range v.Status.Replicas {
		if c.State == storagev1alpha1.ReplicaInSync {
			n++
		}
	}
	return n
}

// replicaState returns the state of the copy on store ("" when it has none).
func replicaState(v *storagev1alpha1.Volume, store string) storagev1alpha1.ReplicaState {
	for _, c := range v.Status.Replicas {
		if c.Store == store {
			return c.State
		}
	}
	return ""
}

func isDegraded(v *storagev1alpha1.Volume) bool {
	return meta.IsStatusConditionTrue(v.Status.Conditions, storagev1alpha1.ConditionDegraded)
}

func replicaSummary(v *storagev1alpha1.Volume) string {
	s := ""
	for _, c := range v.Status.Replicas {
		s += fmt.Sprintf("[%s %s %q] ", c.Store, c.State, c.Message)
	}
	return s
}

func conditionSummary(v *storagev1alpha1.Volume) string {
	s := ""
	for _, c := range v.Status.Conditions {
		s += fmt.Sprintf("[%s=%s %s] ", c.Type, c.Status, c.Reason)
	}
	return s
}

// replStat returns the coordinator's stat of the copy on store.
func replStat(v *replvol.Volumes, store string) (replvol.ReplicationStat, error) {
	for _, s := range v.ReplicationStats() {
		if s.Store == store {
			return s, nil
		}
	}
	return replvol.ReplicationStat{}, errors.New("no stat of the copy on " + store)
}

// restart starts node n's daemon again once it has exited (same configuration, state directory
// and device: its Store comes back with its copies) and waits until its Store is Ready with a
// heartbeat of the new process.
func (rc *replCluster) restart(t *testing.T, n *replNode) {
	t.Helper()
	select {
	case <-n.proc.exited:
	default:
		t.Fatalf("restart the daemon of %s: it is still running (pid %d)", n.name, n.proc.cmd.Process.Pid)
	}
	// A heartbeat stamped (to the second) after the second of the restart is the new process's.
	fresh := time.Now().Truncate(time.Second).Add(time.Second)
	n.proc = startProc(t, n.cfg)
	gomega.NewWithT(t).Eventually(func() error {
		st := rc.store(t, n)
		if !isReady(st.Status.Conditions) || st.Annotations[storagev1alpha1.AnnotationNodeEndpoint] == "" ||
			st.Status.LastHeartbeat == nil || st.Status.LastHeartbeat.Before(&metav1.Time{Time: fresh}) {
			return fmt.Errorf("Store %s of the restarted daemon of %s not Ready yet (heartbeat %v): %s", st.Name, n.name, st.Status.LastHeartbeat, st.Status.NotUsedReason)
		}
		return nil
	}, 2*time.Minute, 100*time.Millisecond).Should(gomega.Succeed())
}

// rotBlock damages, underneath the engine, the 4 KiB block at off of vol's copy on node n's
// device, which must hold want: n's daemon must have exited. It mounts the store from the device
// with the storage-engine library (as the daemon does, which applies its deferred writes), checks
// that the copy's block reads want, unmounts it, then inverts bytes in every 4 KiB-aligned block
// of the device that holds want outside the store's label and metadata region: the block's data
// (no compression, so it lies there as written) and any superseded extent of the same content,
// which is free space. The engine's checksums then fail every read of the block. It returns the
// device offsets it damaged.
func rotBlock(t *testing.T, n *replNode, vol *storagev1alpha1.Volume, off int64, want []byte) []int64 {
	t.Helper()
	select {
	case <-n.proc.exited:
	default:
		t.Fatalf("rot a block on %s: its daemon is still running", n.name)
	}
	if off%streamBlock != 0 || len(want) != streamBlock {
		t.Fatalf("rot a block: offset %d and %d bytes are not one aligned block", off, len(want))
	}
	dev, err := blockdev.Open(n.device, blockdev.Options{})
	if err != nil {
		t.Fatalf("open the device of %s: %v", n.name, err)
	}
	defer dev.Close()
	st, err := store.Open(context.Background(), dev, "", store.Options{DisableBufferedReads: true})
	if err != nil {
		t.Fatalf("mount the store of %s: %v", n.name, err)
	}
	c, o := volume.CollectionName(string(vol.UID)), volume.StripeName(off/volume.DefaultStripeSize)
	got, err := st.Read(context.Background(), c, o, uint64(off%volume.DefaultStripeSize), streamBlock)
	if cerr := st.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("read block %d of the copy on %s from its device: %v", off/streamBlock, n.name, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("block %d of the copy on %s holds %s on its device, want %s", off/streamBlock, n.name, blockTag(got), blockTag(want))
	}
	label, err := blockdev.ReadLabel(dev)
	if err != nil {
		t.Fatalf("read the label of %s's device: %v", n.name, err)
	}
	const chunk = 1 << 20
	buf := blockdev.AlignedBuffer(chunk)
	var damaged []int64
	for base := int64(0); base+chunk <= dev.Size(); base += chunk {
		if _, err := dev.ReadAt(buf, base); err != nil {
			t.Fatalf("read %s's device at %d: %v", n.name, base, err)
		}
		for i := 0; i < chunk; i += streamBlock {
			at := base + int64(i)
			if at < 2*blockdev.LabelSize || (at < label.MetaOffset+label.MetaLength && label.MetaOffset < at+streamBlock) ||
				!bytes.Equal(buf[i:i+streamBlock], want) {
				continue // the label and its copy, the metadata region (KV, deferred log), or another block
			}
			blk := buf[i : i+streamBlock]
			for j := 100; j < 108; j++ {
				blk[j] = ^blk[j]
			}
			damaged = append(damaged, at)
		}
		if len(damaged) > 0 && damaged[len(damaged)-1] >= base {
			if _, err := dev.WriteAt(buf, base); err != nil {
				t.Fatalf("write %s's device at %d: %v", n.name, base, err)
			}
		}
	}
	if err := dev.Flush(); err != nil {
		t.Fatalf("sync %s's device: %v", n.name, err)
	}
	if len(damaged) == 0 {
		t.Fatalf("block %d of the copy on %s (%s) is nowhere on its device outside the metadata region", off/streamBlock, n.name, blockTag(want))
	}
	return damaged
}
