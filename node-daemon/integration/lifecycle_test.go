package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/onsi/gomega"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
	nodeclient "github.com/cobaltstore/cobalt/node-daemon/client"
	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
	"github.com/cobaltstore/cobalt/storage-engine/store"
)

// TestVolumeLifecycleOnLoopDevices: the daemon prepares a clean device into a Store and skips a
// device with a filesystem; a Volume CR becomes Ready through the operator's reconciler and the
// real node client; data written through the volume API reads back, also after a daemon restart;
// clients without a valid certificate are refused and malformed requests get clean errors; the
// Volume's deletion frees it on the node; the store is fsck-clean after a clean shutdown.
func TestVolumeLifecycleOnLoopDevices(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	clean := newDevice(t, 256<<20, 0, nil)
	withFS := newDevice(t, 256<<20, 1024+56, binary.LittleEndian.AppendUint16(nil, 0xEF53))
	devices := []string{clean, withFS}
	mounted := mountedDevice(t) // as root (as CI runs): a mounted filesystem must be skipped
	if mounted != "" {
		devices = append(devices, mounted)
	}
	cfg := c.daemonConfig(t, "node-a", devices...)
	d := startInProcess(t, cfg)
	c.startOperator(t)

	st := servingStore(t, "node-a", clean, "")
	// The device less the metadata region the daemon puts on it (a quarter of so small a device).
	if want := int64(256<<20) - store.DefaultMetadataSize(256<<20); st.Status.Capacity.Value() < want-8<<20 || st.Status.Capacity.Value() > want {
		t.Fatalf("store capacity %s, want about %d bytes", st.Status.Capacity, want)
	}
	skips := map[string]string{withFS: "carries ext"}
	if mounted != "" {
		skips[mounted] = "is mounted at"
	}
	for dev, want := range skips {
		gomega.NewWithT(t).Eventually(func() error {
			s, err := storeOf("node-a", dev)
			if err != nil {
				return err
			}
			if !strings.Contains(s.Status.NotUsedReason, want) {
				return fmt.Errorf("skip reason of %s is %q, want %q", dev, s.Status.NotUsedReason, want)
			}
			return nil
		}, 30*time.Second, 100*time.Millisecond).Should(gomega.Succeed())
	}
	gomega.NewWithT(t).Eventually(func() error {
		s, err := storeOf("node-a", clean)
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		if !isReady(s.Status.Conditions) {
			return fmt.Errorf("store not Ready: %v", s)
		}
		return nil
	}, 30*time.Second, 100*time.Millisecond).Should(gomega.Succeed())

	vol := &storagev1alpha1.Volume{ObjectMeta: metav1.ObjectMeta{Namespace: c.namespace, Name: "data"},
		Spec: storagev1alpha1.VolumeSpec{Size: resource.MustParse("64Mi"), VolumeMode: storagev1alpha1.VolumeModeBlock, Replicas: 1}}
	if err := k8sClient.Create(ctx, vol); err != nil {
		t.Fatalf("create Volume: %v", err)
	}
	gomega.NewWithT(t).Eventually(func() error {
		if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: c.namespace, Name: "data"}, vol); err != nil {
			return err
		}
		if !isReady(vol.Status.Conditions) {
			return fmt.Errorf("volume not Ready: %+v", vol.Status.Conditions)
		}
		return nil
	}, 60*time.Second, 100*time.Millisecond).Should(gomega.Succeed())
	if vol.Status.Placement == nil || vol.Status.Placement.Store != st.Name {
		t.Fatalf("volume placed on %+v, want %s", vol.Status.Placement, st.Name)
	}

	ref := &nodepb.VolumeRef{StoreUuid: st.Status.UUID, VolumeId: vol.NodeVolumeID()}
	cl := c.client(t, st.Annotations[storagev1alpha1.AnnotationNodeEndpoint])
	payload := make([]byte, 5<<20+4096)
	rand.Read(payload)
	want := sha256.Sum256(payload)
	if n, err := cl.WriteFrom(ctx, ref, 3<<20, bytes.NewReader(payload)); err != nil || n != int64(len(payload)) {
		t.Fatalf("WriteFrom = %d, %v", n, err)
	}
	readBack := func(cl *nodeclient.Client) {
		t.Helper()
		var out bytes.Buffer
		if _, err := cl.ReadTo(ctx, ref, 3<<20, int64(len(payload)), &out); err != nil {
			t.Fatalf("ReadTo: %v", err)
		}
		if sha256.Sum256(out.Bytes()) != want {
			t.Fatal("data read back differs from what was written")
		}
	}
	readBack(cl)
	cliRoundTrip(t, c, "data")

	t.Run("client without a valid certificate is refused", func(t *testing.T) {
		noCert := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: c.ca.Pool(),
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &tls.Certificate{}, nil }}
		bad, err := nodeclient.Dial(st.Annotations[storagev1alpha1.AnnotationNodeEndpoint], noCert)
		if err != nil {
			t.Fatal(err)
		}
		defer bad.Close()
		if _, err := bad.Volumes.Read(ctx, &nodepb.ReadRequest{Ref: ref, Length: 1}); status.Code(err) != codes.Unavailable {
			t.Fatalf("read without certificate = %v, want Unavailable", err)
		}
	})
	t.Run("malformed requests get clean errors", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			err  error
			want codes.Code
		}{
			{"bad volume id", func() error {
				_, err := cl.Volumes.Read(ctx, &nodepb.ReadRequest{Ref: &nodepb.VolumeRef{StoreUuid: ref.StoreUuid, VolumeId: "a/b"}, Length: 1})
				return err
			}(), codes.InvalidArgument},
			{"read past the end", func() error {
				_, err := cl.Volumes.Read(ctx, &nodepb.ReadRequest{Ref: ref, Offset: 64 << 20, Length: 1})
				return err
			}(), codes.InvalidArgument},
			{"unknown store", func() error {
				_, err := cl.Volumes.GetVolume(ctx, &nodepb.GetVolumeRequest{Ref: &nodepb.VolumeRef{StoreUuid: "nope", VolumeId: "x"}})
				return err
			}(), codes.NotFound},
			{"shrink", func() error {
				_, err := cl.Volumes.ResizeVolume(ctx, &nodepb.ResizeVolumeRequest{Ref: ref, SizeBytes: 1 << 20})
				return err
			}(), codes.FailedPrecondition},
			{"empty transaction", func() error {
				_, err := cl.Objects.Commit(ctx, &nodepb.CommitRequest{StoreUuid: ref.StoreUuid})
				return err
			}(), codes.InvalidArgument},
		} {
			if status.Code(tt.err) != tt.want {
				t.Errorf("%s: %v, want %v", tt.name, tt.err, tt.want)
			}
		}
	})

	// Restart: the store is mounted again and the data is still there.
	old := st.Annotations[storagev1alpha1.AnnotationNodeEndpoint]
	d.stop(t)
	d = startInProcess(t, cfg)
	st = servingStore(t, "node-a", clean, old)
	readBack(c.client(t, st.Annotations[storagev1alpha1.AnnotationNodeEndpoint]))

	// Deleting the Volume frees it on the node.
	if err := k8sClient.Delete(ctx, vol); err != nil {
		t.Fatal(err)
	}
	gomega.NewWithT(t).Eventually(func() error {
		err := k8sClient.Get(ctx, types.NamespacedName{Namespace: c.namespace, Name: "data"}, &storagev1alpha1.Volume{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return errors.New("volume still exists")
	}, 60*time.Second, 100*time.Millisecond).Should(gomega.Succeed())
	cl2 := c.client(t, st.Annotations[storagev1alpha1.AnnotationNodeEndpoint])
	if _, err := cl2.Volumes.GetVolume(ctx, &nodepb.GetVolumeRequest{Ref: ref}); status.Code(err) != codes.NotFound {
		t.Fatalf("volume on the node after the Volume was deleted: %v", err)
	}
	d.stop(t)
	if replayed := fsckDevice(t, clean); replayed != 0 {
		t.Fatalf("%d deferred writes replayed after a clean shutdown", replayed)
	}
}
