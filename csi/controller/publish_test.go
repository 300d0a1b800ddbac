package controller

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	. "github.com/onsi/gomega"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/csi/driver"
)

// createNode creates the Kubernetes Node named name (a CSI node ID names one) for the test.
func createNode(t *testing.T, name string) {
	t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := testClient.Create(t.Context(), n); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = testClient.Delete(context.Background(), n) })
}

func publishRequest(id, node string) *csi.ControllerPublishVolumeRequest {
	return &csi.ControllerPublishVolumeRequest{VolumeId: id, NodeId: node,
		VolumeCapability: mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)}
}

// publish publishes id to node and returns the generation of the publish context.
func publish(t *testing.T, s *Server, id, node string) string {
	t.Helper()
	resp, err := s.ControllerPublishVolume(t.Context(), publishRequest(id, node))
	if err != nil {
		t.Fatalf("ControllerPublishVolume(%s, %s): %v", id, node, err)
	}
	return resp.GetPublishContext()[driver.PublishContextGeneration]
}

func unpublish(t *testing.T, s *Server, id, node string) {
	t.Helper()
	if _, err := s.ControllerUnpublishVolume(t.Context(), &csi.ControllerUnpublishVolumeRequest{VolumeId: id, NodeId: node}); err != nil {
		t.Fatalf("ControllerUnpublishVolume(%s, %s): %v", id, node, err)
	}
}

// attachment is the Volume's status.attachment as the API server has it.
func attachment(t *testing.T, ns, name string) *v1alpha1.VolumeAttachmentStatus {
	t.Helper()
	vol, err := getVolume(t, ns, name)
	if err != nil {
		t.Fatal(err)
	}
	return vol.Status.Attachment
}

// createReplicatedVolume creates a Volume of two copies as CreateVolume would. The suite's
// operator runs without replication and leaves it unplaced (ReplicationUnavailable), which does
// not matter to publishing: a replicated volume may be attached to any node.
func createReplicatedVolume(t *testing.T, ns string) string {
	t.Helper()
	name := pvName()
	vol, err := volumeForRequest(createRequest(name, "", 8*mi, map[string]string{ParamReplicas: "2", ParamAllowSameNode: "true"}), ns)
	if err != nil {
		t.Fatal(err)
	}
	if err := testClient.Create(t.Context(), vol); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = testClient.Delete(context.Background(), vol) })
	return name
}

func TestPublishReplicatedVolume(t *testing.T) {
	g := NewWithT(t)
	s, ns := newTestServer(t)
	a, b := uniqueNode("pub-a"), uniqueNode("pub-b")
	createNode(t, a)
	createNode(t, b)
	name := createReplicatedVolume(t, ns)

	g.Expect(publish(t, s, name, a)).To(Equal("1"), "the first attachment is generation 1")
	g.Expect(attachment(t, ns, name)).To(Equal(&v1alpha1.VolumeAttachmentStatus{Node: a, Generation: 1}))
	g.Expect(publish(t, s, name, a)).To(Equal("1"), "publishing to the same node again is idempotent")
	g.Expect(attachment(t, ns, name)).To(Equal(&v1alpha1.VolumeAttachmentStatus{Node: a, Generation: 1}))

	_, err := s.ControllerPublishVolume(t.Context(), publishRequest(name, b))
	g.Expect(status.Code(err)).To(Equal(codes.FailedPrecondition), "%v", err)
	g.Expect(status.Convert(err).Message()).To(ContainSubstring("attached to node " + a))
	g.Expect(attachment(t, ns, name)).To(Equal(&v1alpha1.VolumeAttachmentStatus{Node: a, Generation: 1}), "a refused publish changes nothing")

	unpublish(t, s, name, b) // not attached there: nothing to do
	g.Expect(attachment(t, ns, name)).To(Equal(&v1alpha1.VolumeAttachmentStatus{Node: a, Generation: 1}))
	unpublish(t, s, name, a)
	g.Expect(attachment(t, ns, name)).To(Equal(&v1alpha1.VolumeAttachmentStatus{Generation: 1}), "unpublish keeps the generation")
	unpublish(t, s, name, a) // idempotent
	g.Expect(attachment(t, ns, name)).To(Equal(&v1alpha1.VolumeAttachmentStatus{Generation: 1}))

	g.Expect(publish(t, s, name, b)).To(Equal("2"), "the node changed: the next generation")
	g.Expect(publish(t, s, name, b)).To(Equal("2"))
	g.Expect(attachment(t, ns, name)).To(Equal(&v1alpha1.VolumeAttachmentStatus{Node: b, Generation: 2}))
	unpublish(t, s, name, "") // no node_id: from wherever it is attached
	g.Expect(attachment(t, ns, name)).To(Equal(&v1alpha1.VolumeAttachmentStatus{Generation: 2}))
	g.Expect(publish(t, s, name, a)).To(Equal("3"))
}

func TestPublishSingleCopyVolume(t *testing.T) {
	g := NewWithT(t)
	s, ns := newTestServer(t)
	home, other := uniqueNode("pub-home"), uniqueNode("pub-other")
	createNode(t, home)
	createNode(t, other)
	createStore(t, home+"-vdb", home, v1alpha1.DeviceClassSSD, "1Gi", "0")
	name := pvName()
	_, err := s.CreateVolume(t.Context(), createRequest(name, home, 8*mi, map[string]string{ParamReplicas: "1"}))
	g.Expect(err).NotTo(HaveOccurred())

	_, err = s.ControllerPublishVolume(t.Context(), publishRequest(name, other))
	g.Expect(status.Code(err)).To(Equal(codes.FailedPrecondition), "%v", err)
	msg := status.Convert(err).Message()
	g.Expect(msg).To(ContainSubstring("node " + other + " does not hold it"))
	g.Expect(msg).To(ContainSubstring("Store " + home + "-vdb of node " + home))
	g.Expect(attachment(t, ns, name)).To(BeNil(), "a refused publish records nothing")

	g.Expect(publish(t, s, name, home)).To(Equal("1"))
	g.Expect(publish(t, s, name, home)).To(Equal("1"))
	g.Expect(attachment(t, ns, name)).To(Equal(&v1alpha1.VolumeAttachmentStatus{Node: home, Generation: 1}))
	unpublish(t, s, name, home)
	g.Expect(attachment(t, ns, name)).To(Equal(&v1alpha1.VolumeAttachmentStatus{Generation: 1}))

	// A block capability for a Filesystem volume is refused.
	req := publishRequest(name, home)
	req.VolumeCapability = blockCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)
	_, err = s.ControllerPublishVolume(t.Context(), req)
	g.Expect(status.Code(err)).To(Equal(codes.InvalidArgument), "%v", err)
	deleteVolume(t, s, name)
}

func TestPublishErrors(t *testing.T) {
	s, ns := newTestServer(t)
	node := uniqueNode("pub-err")
	createNode(t, node)
	name := createReplicatedVolume(t, ns)
	for _, tc := range []struct {
		name string
		req  *csi.ControllerPublishVolumeRequest
		code codes.Code
		msg  string
	}{
		{name: "no volume id", req: publishRequest("", node), code: codes.InvalidArgument, msg: "volume_id"},
		{name: "no node id", req: publishRequest(name, ""), code: codes.InvalidArgument, msg: "node_id"},
		{name: "no capability", req: &csi.ControllerPublishVolumeRequest{VolumeId: name, NodeId: node},
			code: codes.InvalidArgument, msg: "volume_capability"},
		{name: "multi-node capability", req: &csi.ControllerPublishVolumeRequest{VolumeId: name, NodeId: node,
			VolumeCapability: mountCap(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER)}, code: codes.InvalidArgument, msg: "one node"},
		{name: "volume does not exist", req: publishRequest(pvName(), node), code: codes.NotFound, msg: "does not exist"},
		{name: "invalid volume id", req: publishRequest("Not/A-Name", node), code: codes.NotFound, msg: "does not exist"},
		{name: "node does not exist", req: publishRequest(name, uniqueNode("nowhere")), code: codes.NotFound, msg: "no Kubernetes Node"},
		{name: "invalid node id", req: publishRequest(name, "Not/A-Node"), code: codes.NotFound, msg: "does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.ControllerPublishVolume(t.Context(), tc.req)
			if status.Code(err) != tc.code || !strings.Contains(status.Convert(err).Message(), tc.msg) {
				t.Fatalf("ControllerPublishVolume = %v, want %s containing %q", err, tc.code, tc.msg)
			}
		})
	}
	if att := attachment(t, ns, name); att != nil {
		t.Errorf("refused publishes recorded attachment %+v", att)
	}
}

func TestUnpublishNotFound(t *testing.T) {
	s, _ := newTestServer(t)
	for _, tc := range []struct {
		name string
		req  *csi.ControllerUnpublishVolumeRequest
		code codes.Code
	}{
		{name: "no volume id", req: &csi.ControllerUnpublishVolumeRequest{NodeId: "n"}, code: codes.InvalidArgument},
		{name: "volume does not exist: done", req: &csi.ControllerUnpublishVolumeRequest{VolumeId: pvName(), NodeId: "n"}, code: codes.OK},
		{name: "invalid volume id: done", req: &csi.ControllerUnpublishVolumeRequest{VolumeId: "Not/A-Name"}, code: codes.OK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.ControllerUnpublishVolume(t.Context(), tc.req); status.Code(err) != tc.code {
				t.Fatalf("ControllerUnpublishVolume = %v, want %s", err, tc.code)
			}
		})
	}
}

// TestPublishKeepsOtherStatus: the attachment patch changes status.attachment only; what the
// operator's reconcilers wrote to the status stays.
func TestPublishKeepsOtherStatus(t *testing.T) {
	g := NewWithT(t)
	s, ns := newTestServer(t)
	node := uniqueNode("pub-keep")
	createNode(t, node)
	name := createReplicatedVolume(t, ns)
	g.Eventually(func(g Gomega) {
		vol, err := getVolume(t, ns, name)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(readyCondition(vol)).NotTo(BeNil(), "the operator reported on the Volume")
	}).Should(Succeed())
	g.Expect(publish(t, s, name, node)).To(Equal("1"))
	vol := &v1alpha1.Volume{}
	g.Expect(testClient.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, vol)).To(Succeed())
	g.Expect(readyCondition(vol)).NotTo(BeNil(), "the attachment patch kept the operator's conditions")
	g.Expect(vol.Status.Attachment).To(Equal(&v1alpha1.VolumeAttachmentStatus{Node: node, Generation: 1}))
}

// serverWithPatchHook is newTestServer's Server in namespace ns whose status patches first run
// hook (which returns an error to fail the patch with, or nil to let it through).
func serverWithPatchHook(t *testing.T, ns string, hook func(ctx context.Context, obj client.Object) error) *Server {
	t.Helper()
	direct, err := client.NewWithWatch(testMgr.GetConfig(), client.Options{Scheme: testMgr.GetScheme()})
	if err != nil {
		t.Fatal(err)
	}
	c := interceptor.NewClient(direct, interceptor.Funcs{
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			if err := hook(ctx, obj); err != nil {
				return err
			}
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		},
	})
	s, err := New(Options{Client: c, APIReader: testMgr.GetAPIReader(), Namespace: ns,
		PollInterval: 50 * time.Millisecond, MaxWait: 20 * time.Second, Log: testLog})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestPublishRacesAnotherAttach: another writer attaches the volume elsewhere between the
// plugin's read and its patch. The optimistic lock makes the patch a Conflict instead of
// overwriting that attachment; read again, the volume is attached to the other node.
func TestPublishRacesAnotherAttach(t *testing.T) {
	g := NewWithT(t)
	_, ns := newTestServer(t)
	a, b := uniqueNode("race-a"), uniqueNode("race-b")
	createNode(t, a)
	createNode(t, b)
	name := createReplicatedVolume(t, ns)
	raced := false
	s := serverWithPatchHook(t, ns, func(ctx context.Context, obj client.Object) error {
		if raced {
			return nil
		}
		raced = true
		vol := &v1alpha1.Volume{}
		if err := testClient.Get(ctx, client.ObjectKeyFromObject(obj), vol); err != nil {
			return err
		}
		orig := vol.DeepCopy()
		vol.Status.Attachment = &v1alpha1.VolumeAttachmentStatus{Node: b, Generation: 7}
		// A merge patch without a lock: it cannot conflict with the operator's status writes.
		return testClient.Status().Patch(ctx, vol, client.MergeFrom(orig))
	})
	_, err := s.ControllerPublishVolume(t.Context(), publishRequest(name, a))
	g.Expect(raced).To(BeTrue())
	g.Expect(status.Code(err)).To(Equal(codes.FailedPrecondition), "%v", err)
	g.Expect(status.Convert(err).Message()).To(ContainSubstring("attached to node " + b))
	g.Expect(attachment(t, ns, name)).To(Equal(&v1alpha1.VolumeAttachmentStatus{Node: b, Generation: 7}))
}

// TestPublishConflictsAborted: a patch that keeps meeting Conflicts ends Aborted (the sidecar
// retries) after attachmentRetries attempts, and records nothing.
func TestPublishConflictsAborted(t *testing.T) {
	g := NewWithT(t)
	_, ns := newTestServer(t)
	node := uniqueNode("conflict")
	createNode(t, node)
	name := createReplicatedVolume(t, ns)
	patches := 0
	s := serverWithPatchHook(t, ns, func(_ context.Context, obj client.Object) error {
		patches++
		return apierrors.NewConflict(v1alpha1.GroupVersion.WithResource("volumes").GroupResource(), obj.GetName(), errors.New("changed meanwhile"))
	})
	_, err := s.ControllerPublishVolume(t.Context(), publishRequest(name, node))
	g.Expect(status.Code(err)).To(Equal(codes.Aborted), "%v", err)
	g.Expect(patches).To(Equal(attachmentRetries))
	g.Expect(attachment(t, ns, name)).To(BeNil())
}
