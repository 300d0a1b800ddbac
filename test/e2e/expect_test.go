//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
)

// expectVolumeReady waits for Volume name to be Ready and placed on the Store of device.
func expectVolumeReady(ctx context.Context, name, device string) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		var vol storagev1alpha1.Volume
		g.Expect(s.c.Get(ctx, types.NamespacedName{Namespace: releaseNamespace, Name: name}, &vol)).To(Succeed())
		g.Expect(meta.IsStatusConditionTrue(vol.Status.Conditions, storagev1alpha1.ConditionReady)).To(BeTrue(),
			"Volume %s conditions %+v", name, vol.Status.Conditions)
		g.Expect(vol.Status.Placement).NotTo(BeNil())
		g.Expect(vol.Status.Placement.Store).To(Equal(storeOn(g, ctx, device).Name), "Volume %s placement", name)
	}).WithContext(ctx).WithTimeout(2 * time.Minute).WithPolling(time.Second).Should(Succeed())
}

// expectReadBack reads every range of want in one pass through the CLI and compares checksums.
func expectReadBack(ctx context.Context, want []written) {
	GinkgoHelper()
	for i, w := range want {
		out := filepath.Join(s.work, fmt.Sprintf("readback-%d.out", i))
		var got string
		// The CLI resolves the Volume to its daemon's current endpoint; right after a restart the
		// Store may still name the old pod's address until the next heartbeat.
		Eventually(func() error {
			var err error
			got, err = s.cli.read(ctx, volumeA, out, w.offset, w.size)
			return err
		}).WithContext(ctx).WithTimeout(time.Minute).WithPolling(2 * time.Second).Should(Succeed())
		Expect(got).To(Equal(w.sum), "range [%d, %d) of %s", w.offset, w.offset+w.size, volumeA)
	}
	GinkgoWriter.Printf("read back %d ranges of %s: checksums match\n", len(want), volumeA)
}

func expectExt4Untouched(ctx context.Context) {
	GinkgoHelper()
	sum, err := headSum(ctx, s.ext4.path)
	Expect(err).NotTo(HaveOccurred())
	Expect(sum).To(Equal(s.ext4Head), "first MiB of the ext4 device %s changed", s.ext4.path)
}

func expectGone(ctx context.Context, obj client.Object, key types.NamespacedName, timeout time.Duration) {
	GinkgoHelper()
	Eventually(func() error {
		err := s.c.Get(ctx, key, obj)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("%T %s still exists (deletionTimestamp %v, finalizers %v)", obj, key, obj.GetDeletionTimestamp(), obj.GetFinalizers())
	}).WithContext(ctx).WithTimeout(timeout).WithPolling(time.Second).Should(Succeed())
}
