# Cobalt Makefile. `make help` lists the targets.
#
# Tools are pinned and installed into ./bin on first use; envtest's kube-apiserver and etcd are
# downloaded by setup-envtest where that works, and otherwise built from Go modules (hack/envtest-assets.sh),
# then cached under ./bin so the second run never rebuilds them. The Debian packages a target needs
# (fio, protoc, mkfs.ext4/xfs, the e2e cluster's containerd, ...) are installed by
# hack/install-tools.sh, only when missing.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

LOCALBIN ?= $(shell pwd)/bin
export PATH := $(LOCALBIN):$(PATH)

GO ?= go
ENVTEST_K8S_VERSION ?= 1.37.2
CONTROLLER_TOOLS_VERSION ?= v0.23.0
SETUP_ENVTEST_VERSION ?= v0.25.1
GOLANGCI_LINT_VERSION ?= v2.15.0

CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
SETUP_ENVTEST ?= $(LOCALBIN)/setup-envtest
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint
ENVTEST_ASSETS ?= $(LOCALBIN)/k8s/$(ENVTEST_K8S_VERSION)

# Extra flags for `go test` in `make test` (e.g. GOTESTFLAGS=-v). The timeout is per package
# binary: node-daemon/integration (csi-sanity and the replication processes) took 2 to 3 minutes
# on a quiet machine and outran go test's default 10 minutes on a machine at load 30.
GOTESTFLAGS ?= -timeout 25m

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Code checks

.PHONY: fmt
fmt: ## Run gofmt on the tree.
	gofmt -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## Run go vet.
	$(GO) vet ./...

.PHONY: lint
lint: golangci-lint ## Run golangci-lint with .golangci.yml (the linters and why are listed there).
	$(GOLANGCI_LINT) run ./...

.PHONY: verify-module
verify-module: ## Fail when go.mod or go.sum differ from what `go mod tidy` makes of them.
	@out=$$($(GO) mod tidy -diff 2>&1) || { printf '%s\n' "$$out"; \
		echo "verify-module: go.mod/go.sum are not tidy; run 'go mod tidy' and commit the result"; exit 1; }

##@ Tests

.PHONY: test
test: verify-module lint manifests generate verify-generated verify-proto envtest csi-tools ## Run all tests (builds envtest assets on first run; see README).
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" $(GO) test -count=1 $(GOTESTFLAGS) ./...
	$(MAKE) --no-print-directory test-race

# test-race runs the tests that drive code concurrently under the race detector (the store part
# took 133 s, the volume package 3.5 s, on 2 cores shared with other builds): in
# storage-engine/store, the tests whose goroutines commit at the same time:
# TestConcurrentReadersAndWriters (writers committing deferred and copy-on-write overwrites and
# clones while readers read, with and without buffered writes) and TestCrashRecovery and
# TestCrashRecoveryBufferedWrites (three workers committing while the power is cut; RACE_CRASH_CUTS
# cuts each instead of the usual 200 and 50, enough to cross the commit, flush and replay paths),
# TestCollectionUsageDoesNotBlockCommits (a commit while a usage scan is held in the middle);
# the whole of node-daemon/volume (I/O, trim and flush on one volume beside create, resize and
# delete), node-daemon/server (concurrent gRPC streams and the in-flight guard) and
# storage-engine/cache (its shards). The rest of the store's tests are sequential.
# TestCrashRecoveryMetaOnDevice (three workers committing while crash images of a store with its
# metadata on the device are taken) runs apart with RACE_DEVICE_CRASH_IMAGES images instead of the
# usual 80: under the race detector each image (a copy of a 32 MiB device, mounted and checked)
# costs 2 to 8 s, so 3 images (one round: images during the mount and the commits, 5 to 30 s).
RACE_CRASH_CUTS ?= 20
RACE_STORE_TESTS ?= ^(TestConcurrentReadersAndWriters|TestCrashRecovery|TestCrashRecoveryBufferedWrites|TestCollectionUsageDoesNotBlockCommits)$$
RACE_DEVICE_CRASH_IMAGES ?= 3

.PHONY: test-race
test-race: ## Run the concurrent tests under the race detector (which and why: see the Makefile).
	COBALT_CRASH_CUTS=$(RACE_CRASH_CUTS) $(GO) test -race -count=1 $(GOTESTFLAGS) -run '$(RACE_STORE_TESTS)' ./storage-engine/store/
	COBALT_CRASH_CUTS=$(RACE_DEVICE_CRASH_IMAGES) $(GO) test -race -count=1 $(GOTESTFLAGS) -run '^TestCrashRecoveryMetaOnDevice$$' ./storage-engine/store/
	$(GO) test -race -count=1 $(GOTESTFLAGS) ./node-daemon/volume/... ./node-daemon/server/... ./storage-engine/cache/...

.PHONY: csi-tools
csi-tools: ## Install the file system tools the CSI node plugin's tests use (mkfs.ext4, mkfs.xfs; root, apt).
	@hack/install-tools.sh --if-root mkfs.ext4 mkfs.xfs

.PHONY: envtest
envtest: $(ENVTEST_ASSETS)/kube-apiserver ## Prepare kube-apiserver and etcd for envtest under bin/.

$(ENVTEST_ASSETS)/kube-apiserver: | $(LOCALBIN)
	-@test -x $(SETUP_ENVTEST) || GOBIN=$(LOCALBIN) $(GO) install sigs.k8s.io/controller-runtime/tools/setup-envtest@$(SETUP_ENVTEST_VERSION) 2>/dev/null || true
	SETUP_ENVTEST=$(SETUP_ENVTEST) K8S_VERSION=$(ENVTEST_K8S_VERSION) hack/envtest-assets.sh $(ENVTEST_ASSETS)

.PHONY: chart-test
chart-test: envtest ## Run the chart's tests: lint, template, schema, dry-run apply, kustomize parity.
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" $(GO) test -count=1 $(GOTESTFLAGS) ./test/chart/...

##@ Generated code

# Packages controller-gen reads: only the operator's, so others' work in progress never breaks it.
OPERATOR_PKGS ?= ./api/...;./controllers/...;./csi/controller/...
# Files controller-gen writes; verify-generated fails when they differ from what git has.
GENERATED_PATHS ?= config/crd/bases config/rbac/role.yaml api/v1alpha1/zz_generated.deepcopy.go

.PHONY: manifests
manifests: controller-gen ## Generate CRDs and the manager ClusterRole from kubebuilder markers.
	rm -f config/crd/bases/*.yaml
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="$(OPERATOR_PKGS)" output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	$(MAKE) --no-print-directory chart-sync

.PHONY: generate
generate: controller-gen ## Generate DeepCopy methods of the API types.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: verify-generated
verify-generated: manifests generate snapshot-crds ## Fail when committed generated files are stale (regenerate, then diff against git).
	@git rev-parse --is-inside-work-tree >/dev/null 2>&1 || { echo "verify-generated: not a git work tree"; exit 1; }
	@untracked=$$(git ls-files --others --exclude-standard -- $(GENERATED_PATHS)); \
	if ! git diff --quiet -- $(GENERATED_PATHS) || [ -n "$$untracked" ]; then \
		echo "verify-generated: generated files are stale; run 'make manifests generate' and commit:"; \
		git diff --stat -- $(GENERATED_PATHS); [ -z "$$untracked" ] || echo "untracked: $$untracked"; \
		exit 1; \
	fi

# The chart's CRDs and its copy of the manager's role are generated files: `make manifests` copies
# them from config/ (chart-sync), verify-generated checks them against git, and test/chart fails
# when they drift.
CHART_DIR ?= charts/cobalt
DEMO_STATE_DIR ?= $(CURDIR)/.demo
HELM_VERSION ?= v3.22.0
HELM ?= $(LOCALBIN)/helm
GENERATED_PATHS += $(CHART_DIR)/crds $(CHART_DIR)/files/manager-role.yaml

# The snapshot.storage.k8s.io CRDs (VolumeSnapshot, VolumeSnapshotContent, VolumeSnapshotClass)
# come from external-snapshotter's client module at SNAPSHOTTER_VERSION, the version of the
# csi-snapshotter and snapshot-controller images the chart and kustomize run; `make snapshot-crds`
# writes them into SNAPSHOT_CRD_DIR (config/snapshot-controller applies them) and the chart's
# crds/ (Helm installs them when the cluster has none and never upgrades or deletes them).
SNAPSHOTTER_VERSION ?= v8.7.0
SNAPSHOT_CRD_DIR ?= config/snapshot-controller/crd
GENERATED_PATHS += $(SNAPSHOT_CRD_DIR)

.PHONY: snapshot-crds
snapshot-crds: ## Write the VolumeSnapshot CRDs of external-snapshotter SNAPSHOTTER_VERSION into config/ and the chart.
	hack/snapshot-crds.sh $(SNAPSHOTTER_VERSION) $(SNAPSHOT_CRD_DIR)
	$(MAKE) --no-print-directory chart-sync

.PHONY: chart-sync
chart-sync: ## Copy the generated CRDs (Cobalt's and the VolumeSnapshot ones) and manager role from config/ into the Helm chart.
	rm -f $(CHART_DIR)/crds/*.yaml
	cp config/crd/bases/*.yaml $(SNAPSHOT_CRD_DIR)/*.yaml $(CHART_DIR)/crds/
	cp config/rbac/role.yaml $(CHART_DIR)/files/manager-role.yaml

# The node daemon's gRPC API is generated from node-daemon/proto/*.proto; the generated code is
# committed, so builds never need protoc; `make test` runs verify-proto, which does. `make proto`
# installs Debian's protobuf-compiler and libprotobuf-dev (the well-known types volume.proto
# imports) when missing (root) and fails unless protoc is PROTOC_VERSION, the version the
# committed files name in their headers; the Go plugins are pinned into bin/.

PROTOC_VERSION ?= 3.21.12
PROTOC_GEN_GO_VERSION ?= v1.36.12
PROTOC_GEN_GO_GRPC_VERSION ?= v1.6.0
PROTOC_GEN_GO ?= $(LOCALBIN)/protoc-gen-go
PROTOC_GEN_GO_GRPC ?= $(LOCALBIN)/protoc-gen-go-grpc

.PHONY: proto
proto: protoc $(PROTOC_GEN_GO) $(PROTOC_GEN_GO_GRPC) ## Regenerate node-daemon/proto/*.pb.go from the .proto files.
	cd node-daemon/proto && protoc --proto_path=. \
		--go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative \
		store.proto object.proto volume.proto replica.proto

.PHONY: verify-proto
verify-proto: proto ## Fail if the committed node-daemon/proto/*.pb.go differ from what `make proto` generates.
	git diff --exit-code -- node-daemon/proto

##@ Build

# Every command the README names: bin/manager, bin/node-daemon, bin/cobalt (and bin/kubectl-cobalt,
# a link to it that kubectl runs as `kubectl cobalt`), bin/cobalt-bench.
BUILD_PKGS ?= ./cmd/... ./storage-engine/cmd/...

.PHONY: build
build: | $(LOCALBIN) ## Build manager, node-daemon, cobalt (+ kubectl-cobalt link) and cobalt-bench into bin/.
	CGO_ENABLED=0 $(GO) build -o $(LOCALBIN)/ $(BUILD_PKGS) $(BUILD_EXTRA)
	ln -sfn cobalt $(LOCALBIN)/kubectl-cobalt

IMG ?= cobalt/manager:dev
NODE_DAEMON_IMG ?= cobalt/node-daemon:dev
CONTAINER_TOOL ?= docker

.PHONY: docker-build
docker-build: ## Build the manager and node-daemon images from the Dockerfile.
	$(CONTAINER_TOOL) build --target manager -t $(IMG) .
	$(CONTAINER_TOOL) build --target node-daemon -t $(NODE_DAEMON_IMG) .

##@ Benchmarks

# Power cuts for `make crash-soak` (the normal `make test` run makes 200 with the metadata in a
# directory, 80 crash images with it on the device), and benchmark settings
# for `make bench`, which needs root (loop device) and fio; it overwrites BENCH_DEVICE if set.
CRASH_CUTS ?= 5000
CRASH_SEED ?= 1
BENCH_DURATION ?= 10s
BENCH_OBJECTS ?= 64
BENCH_DEVICE ?=
# Metadata layouts of `make bench`, one table each after one run of fio: device (as the node
# daemon makes stores), dir (a host directory, as stores made before label version 2) and metadev
# (a separate metadata device: a second loop device of BENCH_META_LOOP_SIZE, on the same disk here,
# so it shows the layout's cost, not a faster device's gain).
BENCH_METADATA ?= device,dir,metadev
BENCH_META_LOOP_SIZE ?= 1G

.PHONY: bench
bench: ## Store benchmarks next to fio on a loop device (root): go test -bench, then cobalt-bench with metadata on the device, in a directory and on a second device.
	@hack/install-tools.sh fio
	$(GO) test -run XXX -bench . -benchtime 2000x ./storage-engine/store/
	$(GO) build -o $(LOCALBIN)/cobalt-bench ./storage-engine/cmd/cobalt-bench
	$(LOCALBIN)/cobalt-bench -fio -duration $(BENCH_DURATION) -objects $(BENCH_OBJECTS) -metadata $(BENCH_METADATA) \
		$(if $(BENCH_DEVICE),-device $(BENCH_DEVICE),-loop-size 4G) $(if $(findstring metadev,$(BENCH_METADATA)),-meta-loop-size $(BENCH_META_LOOP_SIZE))

.PHONY: io-bench
io-bench: ## Allocator benchmarks, then FileDevice next to fio on a loop device (root; installs fio if missing).
	@hack/install-tools.sh fio
	$(GO) test -run XXX -bench . ./storage-engine/alloc/
	$(GO) test -run XXX -bench DeviceVsFio -benchtime 5s -timeout 30m ./storage-engine/blockdev/

NODE_BENCH_DEVICE_SIZE ?= 4G
NODE_BENCH_REGION ?= 1073741824
NODE_BENCH_DURATION ?= 5s

.PHONY: node-bench
node-bench: build ## Volume API over gRPC+mTLS beside fio on one loop device (root, fio), one run.
	@hack/install-tools.sh fio
	@set -e; img=$$(mktemp /tmp/cobalt-node-bench.XXXXXX); truncate -s $(NODE_BENCH_DEVICE_SIZE) $$img; \
	dev=$$(losetup --direct-io=on -f --show $$img); trap 'losetup -d '$$dev'; rm -f '$$img EXIT; \
	$(LOCALBIN)/cobalt bench --device $$dev --size $(NODE_BENCH_REGION) --duration $(NODE_BENCH_DURATION)

PVC_BENCH_DEVICE_SIZE ?= 4G
PVC_BENCH_REGION ?= 1073741824
PVC_BENCH_DURATION ?= 5s

.PHONY: pvc-bench
pvc-bench: build ## A volume as a Pod's block device (CSI node plugin's FUSE + loop frontend) beside fio on the raw loop device (root, fio).
	@hack/install-tools.sh fio
	@set -e; img=$$(mktemp /tmp/cobalt-pvc-bench.XXXXXX); truncate -s $(PVC_BENCH_DEVICE_SIZE) $$img; \
	dev=$$(losetup --direct-io=on -f --show $$img); trap 'losetup -d '$$dev'; rm -f '$$img EXIT; \
	$(LOCALBIN)/cobalt bench --device $$dev --frontend --size $(PVC_BENCH_REGION) --duration $(PVC_BENCH_DURATION) $(PVC_BENCH_FLAGS)

# cache-bench prints the 2Q-vs-LRU hit-ratio and throughput tables.
.PHONY: cache-bench
cache-bench: ## Print the cache's hit-ratio and throughput tables.
	$(GO) run ./storage-engine/cache/cmd/cache-bench

# Length of each 4 KiB random-write run of `make replica-bench`, and files for CPU profiles of its
# 3-replica 4 KiB and 1 MiB runs and of its rebuild (empty: none).
REPLICA_BENCH_DURATION ?= 10s
REPLICA_BENCH_CPUPROFILE ?=
REPLICA_BENCH_SEQ_CPUPROFILE ?=
REPLICA_BENCH_REBUILD_CPUPROFILE ?=

.PHONY: replica-bench
replica-bench: ## Replicated writes (1-3 copies over mTLS), single-copy volumes, rebuild and resync beside fio on three loop devices (root, fio), one table.
	@hack/install-tools.sh fio
	REPLICA_BENCH_DURATION=$(REPLICA_BENCH_DURATION) REPLICA_BENCH_CPUPROFILE=$(abspath $(REPLICA_BENCH_CPUPROFILE)) \
		REPLICA_BENCH_SEQ_CPUPROFILE=$(abspath $(REPLICA_BENCH_SEQ_CPUPROFILE)) \
		REPLICA_BENCH_REBUILD_CPUPROFILE=$(abspath $(REPLICA_BENCH_REBUILD_CPUPROFILE)) \
		$(GO) test -count=1 -run XXX -bench '^BenchmarkReplicaDevices$$' -benchtime 1x -timeout 30m ./node-daemon/replica/

##@ Fuzzing and soaks

.PHONY: crash-soak
crash-soak: ## Store crash tests (metadata in a directory, on the device, on a separate metadata device) with CRASH_CUTS power cuts / crash images each (seed CRASH_SEED).
	COBALT_CRASH_CUTS=$(CRASH_CUTS) COBALT_CRASH_SEED=$(CRASH_SEED) $(GO) test -count=1 -timeout 0 \
		-run '^TestCrashRecovery(BufferedWrites|MetaOnDevice|MetaOnDeviceBufferedWrites|MetaOnSeparateDevice)?$$' -v ./storage-engine/store/

.PHONY: store-fuzz
store-fuzz: ## Fuzz every engine-store and metadata-region decoder for FUZZTIME each (default 30s).
	for f in FuzzDecode:onode FuzzDecodeShard:onode FuzzParseKeys:kv FuzzDecodeRecords:kv \
		FuzzDecodeRecords:metafs FuzzDecodeEntry:metafs FuzzDecodeSuperblock:metafs FuzzReplay:metafs; do \
		$(GO) test -run XXX -fuzz "^$${f%%:*}$$" -fuzztime $${FUZZTIME:-30s} ./storage-engine/$${f##*:}/ || exit 1; \
	done

# Fuzz time per target for `make io-fuzz`.
IO_FUZZTIME ?= 60s

.PHONY: io-fuzz
io-fuzz: ## Fuzz the label, signature and freelist decoders for IO_FUZZTIME each.
	for f in FuzzDecodeLabel:blockdev FuzzDetectSignatures:blockdev FuzzDecodeExtents:alloc; do \
		$(GO) test -run XXX -fuzz "^$${f%%:*}$$" -fuzztime $(IO_FUZZTIME) -fuzzminimizetime 5s ./storage-engine/$${f##*:}/ || exit 1; \
	done

.PHONY: node-fuzz
node-fuzz: ## Fuzz the node daemon's decoders (dirty-region and write-intent records, the server's request codec) for FUZZTIME each (default 30s).
	for f in FuzzDecodeDirtyRegions:replica FuzzDecodeIntent:replica FuzzRequestCodec:server; do \
		$(GO) test -run XXX -fuzz "^$${f%%:*}$$" -fuzztime $${FUZZTIME:-30s} ./node-daemon/$${f##*:}/ || exit 1; \
	done

NODE_CRASH_KILLS ?= 30

.PHONY: node-crash-soak
node-crash-soak: envtest ## kill -9 the node daemon NODE_CRASH_KILLS times during writes; verify every acknowledged write.
	COBALT_CRASH_KILLS=$(NODE_CRASH_KILLS) KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" $(GO) test -count=1 -timeout 30m -v \
		-run TestKill9DuringWritesLosesNoAcknowledgedWrite ./node-daemon/integration

# Faults of `make replica-soak` (`make test` runs 8, one of each kind) and its seed (empty: a new
# one, printed; set it to replay a run's faults, victims and writes).
REPL_SOAK_FAULTS ?= 200
REPL_SOAK_SEED ?=
# Kinds of fault of `make replica-soak`, comma-separated (empty: all): kill-restart, stop-cont,
# kill-replace, takeover, takeover-process, bit-rot, device-fail (needs root: loop devices),
# device-eio (a real EIO from a loop device over a FUSE file the test serves; root and /dev/fuse).
REPL_SOAK_KINDS ?=

.PHONY: replica-soak
replica-soak: envtest ## A replicated Volume (3 copies, 4 node daemons) under verified writes hit by REPL_SOAK_FAULTS random faults (kill, stop, replace, takeovers, bit rot, device failure, EIO); prints the fault table.
	COBALT_REPL_SOAK_FAULTS=$(REPL_SOAK_FAULTS) COBALT_REPL_SOAK_SEED=$(REPL_SOAK_SEED) COBALT_REPL_SOAK_KINDS=$(REPL_SOAK_KINDS) KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" \
		$(GO) test -count=1 -timeout 6h -v -run '^TestReplicationSoak$$' ./node-daemon/integration

##@ Demo
# `make demo` runs Cobalt on a local control plane (hack/demo); `make demo-down` stops a running
# demo from another shell. DEMO_USE_KUBECONFIG=1 uses the cluster in $KUBECONFIG.

.PHONY: demo
demo: ## Run Cobalt on a local control plane: a volume written and read back, as root also through CSI; then clean up (only .demo/logs stays).
	@echo "Building the demo runner (bin/cobalt-demo)"
	$(GO) build -o $(LOCALBIN)/cobalt-demo ./hack/demo
	@ENVTEST_ASSETS="$(ENVTEST_ASSETS)" DEMO_STATE_DIR="$(DEMO_STATE_DIR)" $(LOCALBIN)/cobalt-demo up

.PHONY: demo-down
demo-down: ## Stop a `make demo` running in another shell, undo what it set up and remove its files but .demo/logs.
	$(GO) build -o $(LOCALBIN)/cobalt-demo ./hack/demo
	@ENVTEST_ASSETS="$(ENVTEST_ASSETS)" DEMO_STATE_DIR="$(DEMO_STATE_DIR)" $(LOCALBIN)/cobalt-demo down

##@ Cluster (e2e)
# `make e2e` needs root and this kind of machine (no Docker needed): hack/cluster/up.sh installs
# containerd/runc/CNI plugins with apt-get, builds the Kubernetes binaries into bin/cluster and
# reuses envtest's etcd (cold: ~10 min on 2 cores, then cached), starts the cluster under
# E2E_DIR, images.sh loads the manager and node-daemon images built offline (hack/mkimage), the
# ginkgo suite in test/e2e runs, and down.sh tears everything down, also on failure or Ctrl-C.

E2E_DIR ?= /tmp/cobalt-e2e

.PHONY: e2e
e2e: ## Run the e2e suite on a throw-away single-node cluster (root; builds what is missing).
	E2E_DIR=$(E2E_DIR) LOCALBIN=$(LOCALBIN) hack/cluster/e2e.sh

.PHONY: e2e-down
e2e-down: ## Tear down an e2e cluster left running (E2E_KEEP_CLUSTER=1 or a killed run).
	E2E_DIR=$(E2E_DIR) LOCALBIN=$(LOCALBIN) hack/cluster/down.sh

.PHONY: e2e-images
e2e-images: ## Build the manager and node-daemon image tarballs offline (imported if the e2e cluster runs).
	E2E_DIR=$(E2E_DIR) LOCALBIN=$(LOCALBIN) hack/cluster/images.sh

##@ Tools

$(LOCALBIN):
	mkdir -p $(LOCALBIN)

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN) ## Install controller-gen into bin/.
$(CONTROLLER_GEN): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) $(GO) install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)

.PHONY: golangci-lint
golangci-lint: $(GOLANGCI_LINT) ## Build golangci-lint from its Go module into bin/ (cold: 10+ minutes on 2 cores).
$(GOLANGCI_LINT): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

.PHONY: protoc
protoc: ## Install protoc and the well-known types it imports (Debian protobuf-compiler, libprotobuf-dev; root) if missing and check it is PROTOC_VERSION.
	@hack/install-tools.sh protoc /usr/include/google/protobuf/timestamp.proto
	@v=$$(protoc --version); [ "$$v" = "libprotoc $(PROTOC_VERSION)" ] || \
		{ echo "protoc: found '$$v', need libprotoc $(PROTOC_VERSION) (the version the committed *.pb.go were generated with)"; exit 1; }

$(PROTOC_GEN_GO): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
$(PROTOC_GEN_GO_GRPC): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

.PHONY: helm
helm: $(HELM) ## Build the helm CLI from its Go module into bin/.
# The ldflags are those of helm's own release build: without them `helm template` assumes Kubernetes
# 1.20 and refuses the chart's kubeVersion.
HELM_K8S_MINOR ?= $(word 2,$(subst ., ,$(ENVTEST_K8S_VERSION)))
HELM_LDFLAGS ?= -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
	-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$(HELM_K8S_MINOR) \
	-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$(HELM_K8S_MINOR)
$(HELM): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) $(GO) install -ldflags "$(HELM_LDFLAGS)" helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
