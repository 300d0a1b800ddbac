package controllers

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// kubectl runs the assets' kubectl as an admin of the test API server and returns stdout.
func kubectl(ctx context.Context, args ...string) string {
	GinkgoHelper()
	out, err := testEnv.Kubectl(ctx, args...)
	Expect(err).NotTo(HaveOccurred())
	return string(out)
}

var _ = Describe("kubectl get", func() {
	It("shows each kind's status at a glance", func(ctx context.Context) {
		ns := createNamespace(ctx)
		cluster := newFileCluster(ns, "dev")
		Expect(k8sClient.Create(ctx, cluster)).To(Succeed())
		store := createReadyStore(ctx, cluster, uniqueName("dev-store"), "node-a", "100Gi", "25Gi", nil)
		vol := newVolume(ns, "db", "10Gi")
		vol.Spec.StoreName = store.Name
		Expect(k8sClient.Create(ctx, vol)).To(Succeed())
		DeferCleanup(func(ctx context.Context) { deleteAndWait(ctx, vol); deleteAndWait(ctx, store) })
		Eventually(func(g Gomega) string {
			v := &v1alpha1.Volume{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(vol), v)).To(Succeed())
			return string(condition(v.Status.Conditions, v1alpha1.ConditionReady).Status)
		}).Should(Equal("True"))
		Eventually(func(g Gomega) int32 {
			c := &v1alpha1.StorageCluster{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(cluster), c)).To(Succeed())
			return c.Status.StoresUp
		}).Should(Equal(int32(1)))

		out := kubectl(ctx, "get", "storageclusters", "-n", ns)
		GinkgoWriter.Print(out)
		Expect(out).To(MatchRegexp(`NAME\s+READY\s+UP\s+DESIRED\s+CAPACITY\s+AVAILABLE\s+AGE`))
		Expect(out).To(MatchRegexp(`dev\s+True\s+1\s+1\s+100Gi\s+75Gi\s+`))

		out = kubectl(ctx, "get", "store", store.Name)
		GinkgoWriter.Print(out)
		Expect(out).To(MatchRegexp(`NAME\s+NODE\s+DEVICE\s+CLASS\s+ADMIN\s+READY\s+CAPACITY\s+USED\s+ENGINE\s+HEARTBEAT`))
		Expect(out).To(MatchRegexp(store.Name + `\s+node-a\s+/dev/nvme0n1\s+ssd\s+in\s+True\s+100Gi\s+25Gi\s+`))

		out = kubectl(ctx, "get", "volumes", "-n", ns)
		GinkgoWriter.Print(out)
		Expect(out).To(MatchRegexp(`NAME\s+SIZE\s+ALLOCATED\s+MODE\s+STORE\s+REPLICAS\s+IN-SYNC\s+DEGRADED\s+SYNC\s+READY\s+REASON\s+AGE`))
		Expect(out).To(MatchRegexp(`db\s+10Gi\s+10Gi\s+Filesystem\s+`+store.Name+`\s+1\s+1\s+True\s+Provisioned\s+`),
			"a single-copy volume has no Degraded condition")
	})
})
