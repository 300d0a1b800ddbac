package controllers

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// expectRefused asserts that the API server refused a write as invalid with msg in what the
// user sees, and prints the full message (the table of bad specs in the closing note).
func expectRefused(err error, msg string) {
	GinkgoHelper()
	Expect(err).To(HaveOccurred(), "the API server accepted an invalid object")
	Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want an Invalid error, got %v", err)
	Expect(err.Error()).To(ContainSubstring(msg))
	GinkgoWriter.Printf("REFUSED: %s\n", err.Error())
	AddReportEntry("refused", err.Error())
}

// updateUntilInvalid re-reads obj, applies mutate and updates it until the API server answers
// with something other than a conflict (the reconcilers write too), and returns that error.
func updateUntilInvalid[T client.Object](ctx context.Context, obj T, mutate func(T)) error {
	GinkgoHelper()
	var err error
	Eventually(func() bool {
		if err = k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return false
		}
		mutate(obj)
		err = k8sClient.Update(ctx, obj)
		return !apierrors.IsConflict(err)
	}).Should(BeTrue())
	return err
}

var _ = Describe("API validation", func() {
	var ns string
	BeforeEach(func(ctx context.Context) { ns = createNamespace(ctx) })

	DescribeTable("refuses a bad StorageCluster on create",
		func(ctx context.Context, mutate func(*v1alpha1.StorageCluster), msg string) {
			c := newFileCluster(ns, uniqueName("bad"))
			mutate(c)
			expectRefused(k8sClient.Create(ctx, c), msg)
		},
		Entry("no device source", func(c *v1alpha1.StorageCluster) { c.Spec.Devices = v1alpha1.DeviceSelection{} },
			"devices must set exactly one of paths, nameFilter or file"),
		Entry("two device sources", func(c *v1alpha1.StorageCluster) { c.Spec.Devices.Paths = []string{"/dev/sdb"} },
			"devices must set exactly one of paths, nameFilter or file"),
		Entry("device path outside /dev", func(c *v1alpha1.StorageCluster) {
			c.Spec.Devices = v1alpha1.DeviceSelection{Paths: []string{"/dev/sdb", "sdc"}}
		}, "device paths must be absolute paths under /dev/"),
		Entry("allowWipe with a name filter", func(c *v1alpha1.StorageCluster) {
			c.Spec.Devices = v1alpha1.DeviceSelection{NameFilter: "^sd[b-z]$", AllowWipe: true}
		}, "spec.devices: Invalid value: allowWipe requires explicit paths: with nameFilter or file it could wipe devices nobody named"),
		Entry("allowWipe with a file device", func(c *v1alpha1.StorageCluster) { c.Spec.Devices.AllowWipe = true },
			"allowWipe requires explicit paths: with nameFilter or file it could wipe devices nobody named"),
		Entry("metadata devices with a file device", func(c *v1alpha1.StorageCluster) {
			c.Spec.Devices.MetadataDevices = []v1alpha1.MetadataDevice{{Path: "/dev/sdb", Device: "/dev/nvme0n1"}}
		}, "metadataDevices names devices listed in paths"),
		Entry("metadata device of an unlisted path", func(c *v1alpha1.StorageCluster) {
			c.Spec.Devices = v1alpha1.DeviceSelection{Paths: []string{"/dev/sdb"}, MetadataDevices: []v1alpha1.MetadataDevice{{Path: "/dev/sdc", Device: "/dev/nvme0n1"}}}
		}, "metadataDevices names devices listed in paths"),
		Entry("metadata device outside /dev", func(c *v1alpha1.StorageCluster) {
			c.Spec.Devices = v1alpha1.DeviceSelection{Paths: []string{"/dev/sdb"}, MetadataDevices: []v1alpha1.MetadataDevice{{Path: "/dev/sdb", Device: "nvme0n1"}}}
		}, "metadata devices must be absolute paths under /dev/"),
		Entry("metadata device also in paths", func(c *v1alpha1.StorageCluster) {
			c.Spec.Devices = v1alpha1.DeviceSelection{Paths: []string{"/dev/sdb", "/dev/sdc"}, MetadataDevices: []v1alpha1.MetadataDevice{{Path: "/dev/sdb", Device: "/dev/sdc"}}}
		}, "a metadata device cannot also be a device in paths"),
		Entry("shared metadata device", func(c *v1alpha1.StorageCluster) {
			c.Spec.Devices = v1alpha1.DeviceSelection{Paths: []string{"/dev/sdb", "/dev/sdc"},
				MetadataDevices: []v1alpha1.MetadataDevice{{Path: "/dev/sdb", Device: "/dev/nvme0n1"}, {Path: "/dev/sdc", Device: "/dev/nvme0n1"}}}
		}, "two devices cannot share a metadata device"),
		Entry("zero file size", func(c *v1alpha1.StorageCluster) { c.Spec.Devices.File.Size = resource.MustParse("0") },
			"file size must be at least 64Mi"),
		Entry("negative file size", func(c *v1alpha1.StorageCluster) { c.Spec.Devices.File.Size = resource.MustParse("-1Gi") },
			"file size must be at least 64Mi"),
		Entry("unknown cache type", func(c *v1alpha1.StorageCluster) { c.Spec.Engine.CacheType = "arc" },
			`spec.engine.cacheType: Unsupported value: "arc": supported values: "2q", "lru"`),
		Entry("too many cache shards", func(c *v1alpha1.StorageCluster) { c.Spec.Engine.CacheShards = intstr.FromInt32(65) },
			"cacheShards must be 'auto' or a number from 1 to 64"),
		Entry("cache shards word other than auto", func(c *v1alpha1.StorageCluster) { c.Spec.Engine.CacheShards = intstr.FromString("many") },
			"cacheShards must be 'auto' or a number from 1 to 64"),
		Entry("tiny memory target", func(c *v1alpha1.StorageCluster) { c.Spec.Engine.MemoryTarget = resource.MustParse("1Mi") },
			"memoryTarget must be at least 64Mi"),
		Entry("negative memory target", func(c *v1alpha1.StorageCluster) { c.Spec.Engine.MemoryTarget = resource.MustParse("-2Gi") },
			"memoryTarget must be at least 64Mi"),
		Entry("min alloc size not a power of two", func(c *v1alpha1.StorageCluster) { c.Spec.Engine.MinAllocSize = 5000 },
			"minAllocSize must be a power of two from 4096 to 65536"),
		Entry("negative deferred write threshold", func(c *v1alpha1.StorageCluster) { c.Spec.Engine.DeferredWriteThreshold = ptr.To[int64](-1) },
			"spec.engine.deferredWriteThreshold in body should be greater than or equal to 0"),
		Entry("unknown checksum", func(c *v1alpha1.StorageCluster) { c.Spec.Engine.ChecksumType = "md5" },
			`spec.engine.checksumType: Unsupported value: "md5": supported values: "crc32c"`),
		Entry("relative state dir", func(c *v1alpha1.StorageCluster) { c.Spec.NodeDaemon.StateDir = "var/lib/cobalt" },
			"stateDir must be an absolute path other than /"),
		Entry("unknown pull policy", func(c *v1alpha1.StorageCluster) { c.Spec.NodeDaemon.ImagePullPolicy = "Sometimes" },
			`spec.nodeDaemon.imagePullPolicy: Unsupported value: "Sometimes"`),
	)

	It("refuses zero cache shards written as YAML (a Go client omits a zero value)", func(ctx context.Context) {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": v1alpha1.GroupVersion.String(), "kind": "StorageCluster",
			"metadata": map[string]any{"namespace": ns, "name": uniqueName("bad")},
			"spec": map[string]any{
				"devices": map[string]any{"file": map[string]any{"size": "1Gi"}},
				"engine":  map[string]any{"cacheShards": int64(0), "memoryTarget": "0"},
			},
		}}
		err := k8sClient.Create(ctx, u)
		expectRefused(err, "spec.engine.cacheShards: Invalid value: 0: cacheShards must be 'auto' or a number from 1 to 64")
		expectRefused(err, `spec.engine.memoryTarget: Invalid value: "0": memoryTarget must be at least 64Mi`)
	})

	It("admits metadata devices for listed paths", func(ctx context.Context) {
		c := newFileCluster(ns, uniqueName("metadev"))
		c.Spec.Devices = v1alpha1.DeviceSelection{Paths: []string{"/dev/sdb", "/dev/sdc"},
			MetadataDevices: []v1alpha1.MetadataDevice{{Path: "/dev/sdb", Device: "/dev/nvme0n1p1"}, {Path: "/dev/sdc", Device: "/dev/nvme0n1p2"}}}
		Expect(k8sClient.Create(ctx, c)).To(Succeed())
		got := &v1alpha1.StorageCluster{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(c), got)).To(Succeed())
		Expect(got.Spec.Devices.MetadataDevices).To(Equal(c.Spec.Devices.MetadataDevices))
	})

	It("admits allowWipe with explicit paths and leaves it false when unset", func(ctx context.Context) {
		wipe := newFileCluster(ns, uniqueName("wipe"))
		wipe.Spec.Devices = v1alpha1.DeviceSelection{Paths: []string{"/dev/sdb"}, AllowWipe: true}
		Expect(k8sClient.Create(ctx, wipe)).To(Succeed())
		got := &v1alpha1.StorageCluster{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(wipe), got)).To(Succeed())
		Expect(got.Spec.Devices.AllowWipe).To(BeTrue())

		plain := newFileCluster(ns, uniqueName("plain"))
		plain.Spec.Devices = v1alpha1.DeviceSelection{Paths: []string{"/dev/sdb"}}
		Expect(k8sClient.Create(ctx, plain)).To(Succeed())
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(plain), got)).To(Succeed())
		Expect(got.Spec.Devices.AllowWipe).To(BeFalse())
	})

	It("refuses changing a StorageCluster's state dir", func(ctx context.Context) {
		c := newFileCluster(ns, uniqueName("sc"))
		Expect(k8sClient.Create(ctx, c)).To(Succeed())
		err := updateUntilInvalid(ctx, c, func(c *v1alpha1.StorageCluster) { c.Spec.NodeDaemon.StateDir = "/srv/cobalt" })
		expectRefused(err, "stateDir cannot change: existing Stores keep their metadata there")
	})

	DescribeTable("refuses a bad Store on create",
		func(ctx context.Context, mutate func(*v1alpha1.Store), msg string) {
			s := newStore(uniqueName("bad-store"), newFileCluster(ns, "sc"), "node-a")
			mutate(s)
			expectRefused(k8sClient.Create(ctx, s), msg)
		},
		Entry("unknown device class", func(s *v1alpha1.Store) { s.Spec.DeviceClass = "nvme" },
			`spec.deviceClass: Unsupported value: "nvme": supported values: "ssd", "hdd"`),
		Entry("unknown admin state", func(s *v1alpha1.Store) { s.Spec.AdminState = "maybe" },
			`spec.adminState: Unsupported value: "maybe": supported values: "in", "out"`),
		Entry("relative device path", func(s *v1alpha1.Store) { s.Spec.DevicePath = "dev/sdb" },
			"devicePath must be an absolute path"),
	)

	DescribeTable("refuses changing a Store's identity",
		func(ctx context.Context, mutate func(*v1alpha1.Store), msg string) {
			s := newStore(uniqueName("store"), newFileCluster(ns, "sc"), "node-a")
			Expect(k8sClient.Create(ctx, s)).To(Succeed())
			DeferCleanup(func(ctx context.Context) { deleteAndWait(ctx, s) })
			expectRefused(updateUntilInvalid(ctx, s, mutate), msg)
		},
		Entry("device path", func(s *v1alpha1.Store) { s.Spec.DevicePath = "/dev/sdz" },
			"devicePath is immutable: the Store's data lives on that device"),
		Entry("node", func(s *v1alpha1.Store) { s.Spec.NodeName = "node-b" },
			"nodeName is immutable: a Store cannot move to another node"),
		Entry("cluster", func(s *v1alpha1.Store) { s.Spec.Cluster.Name = "other" },
			"spec.cluster: Invalid value: cluster is immutable"),
	)

	DescribeTable("refuses a bad Volume on create",
		func(ctx context.Context, mutate func(*v1alpha1.Volume), msg string) {
			v := newVolume(ns, uniqueName("bad-vol"), "1Gi")
			mutate(v)
			expectRefused(k8sClient.Create(ctx, v), msg)
		},
		Entry("zero size", func(v *v1alpha1.Volume) { v.Spec.Size = resource.MustParse("0") },
			"size must be greater than zero"),
		Entry("negative size", func(v *v1alpha1.Volume) { v.Spec.Size = resource.MustParse("-5Gi") },
			"size must be greater than zero"),
		Entry("more than 3 replicas", func(v *v1alpha1.Volume) { v.Spec.Replicas = 4 },
			"spec.replicas: Invalid value: 4: spec.replicas in body should be less than or equal to 3"),
		Entry("negative replicas", func(v *v1alpha1.Volume) { v.Spec.Replicas = -1 },
			"spec.replicas in body should be greater than or equal to 1"),
		Entry("replica stores without the first copy's", func(v *v1alpha1.Volume) {
			v.Spec.Replicas, v.Spec.ReplicaStoreNames = 2, []string{"s2"}
		}, "replicaStoreNames needs storeName, the Store of the first copy"),
		Entry("two copies on one Store", func(v *v1alpha1.Volume) {
			v.Spec.Replicas, v.Spec.StoreName, v.Spec.ReplicaStoreNames = 2, "s1", []string{"s1"}
		}, "two copies can never share a Store: replicaStoreNames must not repeat storeName"),
		Entry("a Store listed twice", func(v *v1alpha1.Volume) {
			v.Spec.Replicas, v.Spec.StoreName, v.Spec.ReplicaStoreNames = 3, "s1", []string{"s2", "s2"}
		}, `spec.replicaStoreNames[1]: Duplicate value: "s2"`),
		Entry("more replica stores than replicas", func(v *v1alpha1.Volume) {
			v.Spec.Replicas, v.Spec.StoreName, v.Spec.ReplicaStoreNames = 2, "s1", []string{"s2", "s3"}
		}, "replicaStoreNames names exactly replicas - 1 Stores"),
		Entry("a replicated restore", func(v *v1alpha1.Volume) {
			v.Spec.Replicas, v.Spec.Source = 2, &v1alpha1.VolumeSource{SnapshotName: "snap"}
		}, "a restore or clone has one copy for now"),
		Entry("unknown volume mode", func(v *v1alpha1.Volume) { v.Spec.VolumeMode = "Object" },
			`spec.volumeMode: Unsupported value: "Object": supported values: "Block", "Filesystem"`),
	)

	DescribeTable("refuses changing a Volume the wrong way",
		func(ctx context.Context, storeName string, mutate func(*v1alpha1.Volume), msg string) {
			v := newVolume(ns, uniqueName("vol"), "2Gi")
			v.Spec.StoreName = storeName
			Expect(k8sClient.Create(ctx, v)).To(Succeed())
			DeferCleanup(func(ctx context.Context) { deleteAndWait(ctx, v) })
			expectRefused(updateUntilInvalid(ctx, v, mutate), msg)
		},
		Entry("shrink", "", func(v *v1alpha1.Volume) { v.Spec.Size = resource.MustParse("1Gi") },
			"size cannot be decreased: shrinking a volume is not supported"),
		Entry("move a placed volume", "store-x", func(v *v1alpha1.Volume) { v.Spec.StoreName = "store-y" },
			"spec.storeName: Invalid value: storeName cannot change once the volume is placed"),
		Entry("unplace a placed volume", "store-x", func(v *v1alpha1.Volume) { v.Spec.StoreName = "" },
			"storeName cannot change once the volume is placed"),
		Entry("change volume mode", "", func(v *v1alpha1.Volume) { v.Spec.VolumeMode = v1alpha1.VolumeModeBlock },
			"volumeMode is immutable"),
		Entry("change replicas", "", func(v *v1alpha1.Volume) { v.Spec.Replicas = 2 },
			"replicas is immutable"),
	)

	It("refuses moving the copies of a replicated Volume except one copy per update", func(ctx context.Context) {
		v := newVolume(ns, uniqueName("vol"), "2Gi")
		v.Spec.Replicas, v.Spec.StoreName, v.Spec.ReplicaStoreNames = 3, "store-x", []string{"store-y", "store-z"}
		Expect(k8sClient.Create(ctx, v)).To(Succeed(), "a user may pin every copy")
		DeferCleanup(func(ctx context.Context) { deleteAndWait(ctx, v) })
		expectRefused(updateUntilInvalid(ctx, v, func(v *v1alpha1.Volume) { v.Spec.ReplicaStoreNames = []string{"store-v", "store-w"} }),
			"spec.replicaStoreNames: Invalid value: replicaStoreNames cannot change once the copies are placed, except that one copy moves to another Store per update")
		expectRefused(updateUntilInvalid(ctx, v, func(v *v1alpha1.Volume) { v.Spec.ReplicaStoreNames = nil }),
			"replicaStoreNames cannot change once the copies are placed")
		expectRefused(updateUntilInvalid(ctx, v, func(v *v1alpha1.Volume) { v.Spec.ReplicaStoreNames = []string{"store-y"} }),
			"replicaStoreNames cannot change once the copies are placed")
		expectRefused(updateUntilInvalid(ctx, v, func(v *v1alpha1.Volume) {
			v.Spec.StoreName, v.Spec.ReplicaStoreNames = "store-v", []string{"store-y", "store-w"}
		}), "spec.storeName: Invalid value: storeName cannot change once the volume is placed, except that the first copy of a replicated volume may move")
		expectRefused(updateUntilInvalid(ctx, v, func(v *v1alpha1.Volume) {
			v.Spec.StoreName, v.Spec.ReplicaStoreNames = "store-y", []string{"store-x", "store-z"}
		}), "storeName cannot change once the volume is placed")
		expectRefused(updateUntilInvalid(ctx, v, func(v *v1alpha1.Volume) { v.Spec.ReplicaStoreNames = []string{"store-x", "store-z"} }),
			"two copies can never share a Store")
		expectRefused(updateUntilInvalid(ctx, v, func(v *v1alpha1.Volume) { v.Spec.StoreName = "" }),
			"storeName cannot change once the volume is placed")

		By("one copy moves per update: a replica's Store, then the first copy's")
		Expect(updateUntilInvalid(ctx, v, func(v *v1alpha1.Volume) { v.Spec.ReplicaStoreNames = []string{"store-y", "store-w"} })).To(Succeed())
		Expect(updateUntilInvalid(ctx, v, func(v *v1alpha1.Volume) { v.Spec.StoreName = "store-v" })).To(Succeed())
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(v), v)).To(Succeed())
		Expect(v.PlacedStores()).To(Equal([]string{"store-v", "store-y", "store-w"}))
	})

	It("fills in defaults", func(ctx context.Context) {
		c := newFileCluster(ns, uniqueName("sc"))
		Expect(k8sClient.Create(ctx, c)).To(Succeed())
		got := &v1alpha1.StorageCluster{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(c), got)).To(Succeed())
		e := got.Spec.Engine
		Expect(e.CacheType).To(Equal(v1alpha1.CacheType2Q))
		Expect(e.CacheShards).To(Equal(intstr.FromString("auto")))
		Expect(e.MemoryTarget.String()).To(Equal("1Gi"))
		Expect(e.MinAllocSize).To(Equal(int64(4096)))
		Expect(e.DeferredWriteThreshold).To(Equal(ptr.To[int64](65536)))
		Expect(e.ChecksumType).To(Equal(v1alpha1.ChecksumCRC32C))
		Expect(got.Spec.NodeDaemon.StateDir).To(Equal("/var/lib/cobalt"))

		s := newStore(uniqueName("store"), c, "node-a")
		Expect(k8sClient.Create(ctx, s)).To(Succeed())
		DeferCleanup(func(ctx context.Context) { deleteAndWait(ctx, s) })
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(s), s)).To(Succeed())
		Expect(s.Spec.AdminState).To(Equal(v1alpha1.AdminStateIn))

		v := newVolume(ns, uniqueName("vol"), "1Gi")
		Expect(k8sClient.Create(ctx, v)).To(Succeed())
		DeferCleanup(func(ctx context.Context) { deleteAndWait(ctx, v) })
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(v), v)).To(Succeed())
		Expect(v.Spec.VolumeMode).To(Equal(v1alpha1.VolumeModeFilesystem))
		Expect(v.Spec.Replicas).To(Equal(int32(1)))
	})

	It("accepts boundary values and integer sizes", func(ctx context.Context) {
		c := newFileCluster(ns, uniqueName("sc"))
		c.Spec.Devices.File.Size = resource.MustParse("64Mi")
		c.Spec.Engine = v1alpha1.EngineSettings{CacheType: v1alpha1.CacheTypeLRU, CacheShards: intstr.FromInt32(64),
			MemoryTarget: resource.MustParse("67108864"), MinAllocSize: 65536, DeferredWriteThreshold: ptr.To[int64](0),
			ChecksumType: v1alpha1.ChecksumCRC32C}
		Expect(k8sClient.Create(ctx, c)).To(Succeed())

		v := newVolume(ns, uniqueName("vol"), "1073741824")
		Expect(k8sClient.Create(ctx, v)).To(Succeed())
		DeferCleanup(func(ctx context.Context) { deleteAndWait(ctx, v) })
		Expect(updateUntilInvalid(ctx, v, func(v *v1alpha1.Volume) { v.Spec.Size = resource.MustParse("2Gi") })).
			To(Succeed(), "growing a volume is allowed")
	})
})
