package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"

	"github.com/cobaltstore/cobalt/csi/driver"
)

// csiVolumeSize is the size of the volume the demo provisions through CSI.
const csiVolumeSize = 128 << 20

// csiRun is the demo's part of csi-provisioner and kubelet: the plugins' connections and the one
// volume it provisions, stages and publishes.
type csiRun struct {
	kubelet    kubeletPaths
	log        callLog
	controller *grpc.ClientConn
	node       *grpc.ClientConn
	nodeID     string
	topology   *csi.Topology

	claim      claim
	vol        *csi.Volume // from CreateVolume; nil before, and after DeleteVolume
	capability *csi.VolumeCapability
	staging    string   // the staging path while staged, "" otherwise
	targets    []string // the target paths published now
	files      []fileSum
	// unstageOnExit says the clean-up that unpublishes and unstages is registered.
	unstageOnExit bool
}

// nodePluginArgs returns the node DaemonSet's arguments with its kubelet paths moved under
// .demo/kubelet, prepares that directory as a node would have it, and arranges that nothing the
// node plugin mounts or attaches outlives the demo. Without a node plugin in the DaemonSet, or
// without root, the arguments are returned as they are and the CSI steps are skipped.
func (d *demo) nodePluginArgs(cmd podCommand, say sayFunc) ([]string, error) {
	if cmd.kubeletDir == "" {
		if d.csiSkip == "" {
			d.csiSkip = "the node DaemonSet does not serve the CSI node plugin (it mounts no kubelet directory)"
		}
		return cmd.args, nil
	}
	if d.csiSkip != "" {
		return nil, fmt.Errorf("the node DaemonSet serves the CSI node plugin (kubelet directory %s) although the operator runs with --csi-node-plugin=false", cmd.kubeletDir)
	}
	k := kubeletPaths{root: d.paths.kubelet}
	// The DaemonSet's hostPath is of type Directory (the node has it) and kubelet creates
	// plugins_registry; here the demo is both.
	for _, dir := range []string{k.root, k.pluginRegistry()} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("create %s: %w", dir, err)
		}
	}
	// Registered before the node daemon starts, so it runs after the daemon has stopped.
	d.onExit("nothing of the node plugin is left mounted or attached; removed "+k.root, func(ctx context.Context) error {
		done, err := cleanupCSIHost(ctx, k.root, d.paths.nodeState)
		for _, what := range done {
			fmt.Fprintf(d.out, "    %s (left by the node plugin)\n", what)
		}
		return err
	})
	args, changed := rewriteKubeletArgs(cmd.args, cmd.kubeletDir, k.root)
	say("CSI node plugin: the DaemonSet mounts the kubelet directory %s; the demo plays kubelet in %s instead:", cmd.kubeletDir, k.root)
	for _, c := range changed {
		say("  %s  ->  %s", c.from, c.to)
	}
	d.csi = &csiRun{kubelet: k, log: callLog{path: filepath.Join(d.paths.logs, "csi.log")}}
	return args, nil
}

// csiSteps are the steps that use a volume the way a Pod does, through the CSI plugins.
func (d *demo) csiSteps(logs func(...string) []string) []step {
	pvName := "pvc-demo-" + randomHex(4)
	return []step{
		{title: "Find the CSI node plugin as kubelet's plugin watcher would (registration socket, NodeGetInfo)", logs: logs("node-daemon.log", "csi.log"), run: d.csiRegister},
		{title: "CreateVolume " + pvName + " (128Mi, ext4) on the CSI controller plugin, as csi-provisioner would for StorageClass cobalt", logs: logs("operator.log", "node-daemon.log", "csi.log"), run: d.csiStep(func(ctx context.Context, say sayFunc) error { return d.csiCreateVolume(ctx, say, pvName) })},
		{title: "NodeStageVolume and NodePublishVolume, as kubelet would for a Pod", logs: logs("node-daemon.log", "csi.log"), run: d.csiStep(d.csiStageAndPublish)},
		{title: "Write files on the Pod's mount (fsync) and record their sha256", logs: logs("node-daemon.log"), run: d.csiStep(d.csiWriteFiles)},
		{title: "NodeUnpublishVolume and NodeUnstageVolume (the Pod is gone)", logs: logs("node-daemon.log", "csi.log"), run: d.csiStep(d.csiTearDown)},
		{title: "Stage and publish again for a new Pod and read the files back (sha256)", logs: logs("node-daemon.log", "csi.log"), run: d.csiStep(d.csiStageAndReadBack)},
		{title: "What a user sees: lsblk, df -h, kubectl get volumes, cobalt status", logs: logs("kubectl.log", "cobalt-cli.log"), run: d.csiStep(d.csiShow)},
		{title: "NodeUnpublishVolume, NodeUnstageVolume and DeleteVolume (the claim is deleted)", logs: logs("node-daemon.log", "operator.log", "csi.log"), run: d.csiStep(d.csiDelete)},
	}
}

// csiStep skips a CSI step when the node plugin cannot run here.
func (d *demo) csiStep(run func(ctx context.Context, say sayFunc) error) func(ctx context.Context, say sayFunc) error {
	return func(ctx context.Context, say sayFunc) error {
		if d.csiSkip != "" {
			return skipped("%s", d.csiSkip)
		}
		if d.csi == nil || d.csi.node == nil {
			return fmt.Errorf("the CSI node plugin was not found: an earlier CSI step failed")
		}
		return run(ctx, say)
	}
}

// csiRegister does what kubelet's plugin watcher does with the node plugin's registration
// socket (GetInfo, NotifyRegistrationStatus) and then asks the plugin for its node ID and
// topology, which kubelet writes into the CSINode object and the scheduler uses.
func (d *demo) csiRegister(ctx context.Context, say sayFunc) error {
	if d.csiSkip != "" {
		return skipped("%s", d.csiSkip)
	}
	if d.csi == nil {
		return fmt.Errorf("the node daemon was started without the CSI node plugin")
	}
	c := d.csi
	regSock := filepath.Join(c.kubelet.pluginRegistry(), driver.Name+"-reg.sock")
	conn, err := dialUnix(regSock)
	if err != nil {
		return err
	}
	defer conn.Close()
	reg := registerapi.NewRegistrationClient(conn)
	info, err := reg.GetInfo(ctx, &registerapi.InfoRequest{})
	if err != nil {
		return fmt.Errorf("GetInfo on the registration socket %s: %w", regSock, err)
	}
	if info.GetType() != registerapi.CSIPlugin || info.GetName() != driver.Name {
		return fmt.Errorf("the registration socket %s announces a %s plugin %q, want CSI plugin %s", regSock, info.GetType(), info.GetName(), driver.Name)
	}
	if !isUnder(info.GetEndpoint(), c.kubelet.root) {
		return fmt.Errorf("the node plugin announces endpoint %s, outside the demo's kubelet directory %s", info.GetEndpoint(), c.kubelet.root)
	}
	if _, err := reg.NotifyRegistrationStatus(ctx, &registerapi.RegistrationStatus{PluginRegistered: true}); err != nil {
		return fmt.Errorf("NotifyRegistrationStatus: %w", err)
	}
	say("%s: CSI plugin %s, endpoint %s, versions %v", regSock, info.GetName(), info.GetEndpoint(), info.GetSupportedVersions())
	if c.node, err = dialUnix(info.GetEndpoint()); err != nil {
		return err
	}
	if c.controller, err = dialUnix(d.paths.csiSocket); err != nil {
		return err
	}
	d.onExit("closed the CSI connections", func(context.Context) error {
		return errors.Join(c.node.Close(), c.controller.Close())
	})
	ni, err := csiCall(ctx, c.log, "NodeGetInfo", &csi.NodeGetInfoRequest{}, csi.NewNodeClient(c.node).NodeGetInfo)
	if err != nil {
		return err
	}
	c.nodeID, c.topology = ni.GetNodeId(), ni.GetAccessibleTopology()
	say("NodeGetInfo: node %s, topology %v (kubelet records these in CSINode %s)", c.nodeID, c.topology.GetSegments(), d.cfg.nodeName)
	if c.topology == nil {
		return fmt.Errorf("the node plugin reports no accessible topology; the controller plugin needs the node to place the volume")
	}
	return nil
}

// csiCreateVolume provisions a volume for a claim as csi-provisioner does once the scheduler
// has picked the demo's node, from StorageClass cobalt's parameters.
func (d *demo) csiCreateVolume(ctx context.Context, say sayFunc, pvName string) error {
	c := d.csi
	out, err := d.kc.run(ctx, "get", "storageclass", "cobalt", "-o", "jsonpath={.parameters}")
	if err != nil {
		return fmt.Errorf("read StorageClass cobalt (installed from config/default): %w", err)
	}
	var scParams map[string]string
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &scParams); err != nil && strings.TrimSpace(out) != "" {
		return fmt.Errorf("StorageClass cobalt parameters %q: %w", out, err)
	}
	c.claim = claim{name: "demo-claim", namespace: d.cfg.namespace, pvName: pvName, sizeBytes: csiVolumeSize, node: c.topology}
	req, err := provisionerRequest(c.claim, scParams)
	if err != nil {
		return err
	}
	c.capability = req.GetVolumeCapabilities()[0]
	say("StorageClass cobalt parameters %v -> request parameters %v, fsType %q, SINGLE_NODE_WRITER, requisite topology %v",
		scParams, req.GetParameters(), c.capability.GetMount().GetFsType(), c.topology.GetSegments())
	// DeleteVolume on exit, unless the last step did it: registered first, so it runs after the
	// volume is unstaged.
	d.onExit("made sure CSI volume "+pvName+" is deleted (DeleteVolume)", func(ctx context.Context) error { return d.csiDeleteVolume(ctx) })
	resp, err := csiCall(ctx, c.log, "CreateVolume", req, csi.NewControllerClient(c.controller).CreateVolume)
	if err != nil {
		return err
	}
	c.vol = resp.GetVolume()
	say("volume_id %s, %d MiB, accessible from %v", c.vol.GetVolumeId(), c.vol.GetCapacityBytes()>>20, c.vol.GetAccessibleTopology())
	for _, k := range []string{driver.ContextVolume, driver.ContextStoreUUID, driver.ContextVolumeUID} {
		say("  volume_context %s = %s", k, c.vol.GetVolumeContext()[k])
	}
	return nil
}

// csiDeleteVolume deletes the provisioned volume if it still exists.
func (d *demo) csiDeleteVolume(ctx context.Context) error {
	c := d.csi
	if c == nil || c.vol == nil || c.controller == nil {
		return nil
	}
	req := &csi.DeleteVolumeRequest{VolumeId: c.vol.GetVolumeId()}
	err := retryAborted(ctx, func(ctx context.Context) error {
		_, err := csiCall(ctx, c.log, "DeleteVolume", req, csi.NewControllerClient(c.controller).DeleteVolume)
		return err
	})
	if err != nil {
		return err
	}
	c.vol = nil
	return nil
}

// csiDelete ends the volume's life as Kubernetes would when the Pod and then the claim are
// deleted, and checks that the node is left clean.
func (d *demo) csiDelete(ctx context.Context, say sayFunc) error {
	c := d.csi
	id, vctx := c.vol.GetVolumeId(), c.vol.GetVolumeContext()
	if err := d.csiUnpublishAndUnstage(ctx, say); err != nil {
		return err
	}
	if err := d.csiDeleteVolume(ctx); err != nil {
		return err
	}
	say("DeleteVolume %s: done (the operator and the node daemon freed its space)", id)
	ns, _, _ := strings.Cut(vctx[driver.ContextVolume], "/")
	left, err := d.kc.run(ctx, "get", "volume", id, "-n", ns, "-o", "name", "--ignore-not-found")
	if err != nil {
		return err
	}
	if strings.TrimSpace(left) != "" {
		return fmt.Errorf("DeleteVolume returned but %s still exists", strings.TrimSpace(left))
	}
	return d.csiCheckNodeClean(ctx, say)
}

// csiCheckNodeClean checks that nothing the node plugin set up for the volume is left: no mount
// under the kubelet directory and no loop device backed by the plugin's FUSE files.
func (d *demo) csiCheckNodeClean(ctx context.Context, say sayFunc) error {
	mps, err := mountsUnder(d.csi.kubelet.root)
	if err != nil {
		return err
	}
	loops, err := loopsBackedUnder(ctx, d.paths.nodeState)
	if err != nil {
		return err
	}
	if len(mps) > 0 || len(loops) > 0 {
		return fmt.Errorf("left on the node: mounts %v, loop devices %v", mps, loops)
	}
	say("no mount left under %s, no loop device backed by the node plugin's files (losetup -a, /proc/mounts)", d.csi.kubelet.root)
	return nil
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}
