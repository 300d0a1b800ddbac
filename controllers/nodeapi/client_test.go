package nodeapi_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/controllers"
	"github.com/cobaltstore/cobalt/controllers/nodeapi"
	"github.com/cobaltstore/cobalt/node-daemon/client"
	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
	"github.com/cobaltstore/cobalt/node-daemon/server/servertest"
)

func TestNodeClientImplementsTheVolumeContract(t *testing.T) {
	env := servertest.Start(t, 64<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, err := nodeapi.New(env.ClientTLS(t, "cobalt-operator"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	store := &storagev1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: "node-a-loop0", Annotations: map[string]string{storagev1alpha1.AnnotationNodeEndpoint: env.Addr}}}
	store.Status.UUID = servertest.StoreUUID
	vol := &storagev1alpha1.Volume{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "data", UID: "0b7e-uid"}}
	vol.Spec.Size = resource.MustParse("10Mi")

	alloc, err := nc.CreateVolume(ctx, store, vol, controllers.ContentSource{})
	if err != nil || alloc.AllocatedBytes != 10<<20 {
		t.Fatalf("CreateVolume = %+v, %v", alloc, err)
	}
	// Idempotent.
	if alloc, err := nc.CreateVolume(ctx, store, vol, controllers.ContentSource{}); err != nil || alloc.AllocatedBytes != 10<<20 {
		t.Fatalf("repeated CreateVolume = %+v, %v", alloc, err)
	}
	// The volume is identified by the Volume's UID.
	c, err := client.Dial(env.Addr, env.ClientTLS(t, "test"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Volumes.GetVolume(ctx, &nodepb.GetVolumeRequest{Ref: &nodepb.VolumeRef{StoreUuid: servertest.StoreUUID, VolumeId: "0b7e-uid"}}); err != nil {
		t.Fatalf("volume not found by UID: %v", err)
	}
	vol.Spec.Size = resource.MustParse("20Mi")
	if alloc, err := nc.ResizeVolume(ctx, store, vol); err != nil || alloc.AllocatedBytes != 20<<20 {
		t.Fatalf("ResizeVolume = %+v, %v", alloc, err)
	}
	// Create after a resize the reconciler did not see reports the current size.
	vol.Spec.Size = resource.MustParse("10Mi")
	if alloc, err := nc.CreateVolume(ctx, store, vol, controllers.ContentSource{}); err != nil || alloc.AllocatedBytes != 20<<20 {
		t.Fatalf("CreateVolume of a grown volume = %+v, %v", alloc, err)
	}
	vol.Spec.Size = resource.MustParse("1Gi")
	if _, err := nc.ResizeVolume(ctx, store, vol); !errors.Is(err, controllers.ErrInsufficientCapacity) {
		t.Fatalf("ResizeVolume past the store = %v, want ErrInsufficientCapacity", err)
	}
	big := vol.DeepCopy()
	big.UID = "other"
	if _, err := nc.CreateVolume(ctx, store, big, controllers.ContentSource{}); !errors.Is(err, controllers.ErrInsufficientCapacity) {
		t.Fatalf("CreateVolume past the store = %v, want ErrInsufficientCapacity", err)
	}
	if err := nc.DeleteVolume(ctx, store, vol); err != nil {
		t.Fatalf("DeleteVolume: %v", err)
	}
	if err := nc.DeleteVolume(ctx, store, vol); err != nil {
		t.Fatalf("repeated DeleteVolume: %v", err)
	}
	// A Store the daemon has not announced yet.
	bare := &storagev1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: "new"}}
	if _, err := nc.CreateVolume(ctx, bare, vol, controllers.ContentSource{}); err == nil || !strings.Contains(err.Error(), "endpoint") {
		t.Fatalf("CreateVolume on a store without endpoint = %v", err)
	}
}

func TestNodeClientNeedsCertificate(t *testing.T) {
	if _, err := nodeapi.New(nil); err == nil {
		t.Fatal("node client without TLS accepted")
	}
}
