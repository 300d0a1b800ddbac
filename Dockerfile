# syntax=docker/dockerfile:1
# Images of Cobalt's two binaries, built from one multi-stage file:
#   docker build --target manager     -t cobalt/manager:dev .       (the operator)
#   docker build --target node-daemon -t cobalt/node-daemon:dev .   (the per-node daemon)
# `make docker-build` builds both. Binaries are static (CGO_ENABLED=0); the operator runs on a
# distroless static base that has no shell or package manager, the node daemon on Debian slim
# with the file system tools its CSI node plugin runs.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
# Dependencies first, so source edits do not invalidate the module download layer.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG TARGETOS=linux
ARG TARGETARCH
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags="-s -w" -o /out/manager ./cmd/manager

FROM build AS build-node-daemon
ARG NODE_DAEMON_PKG=./cmd/node-daemon
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags="-s -w" -o /out/node-daemon ${NODE_DAEMON_PKG}

# The node daemon opens raw block devices and runs privileged as root (see the DaemonSet the
# operator creates); its image therefore keeps the root user. Its CSI node plugin formats, checks,
# mounts and grows volumes with the programs k8s.io/mount-utils runs: mount, umount, blkid,
# fsck (fsck.ext4, fsck.xfs), mkfs.ext4, mkfs.xfs, resize2fs, xfs_growfs, blockdev, and losetup
# for the loop devices; hence a small Debian base rather than distroless.
FROM debian:bookworm-slim AS node-daemon
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      mount util-linux e2fsprogs xfsprogs \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build-node-daemon /out/node-daemon /node-daemon
ENTRYPOINT ["/node-daemon"]

# The operator needs no privilege: it runs as the distroless "nonroot" user (65532).
FROM gcr.io/distroless/static-debian12:nonroot AS manager
COPY --from=build /out/manager /manager
USER 65532:65532
ENTRYPOINT ["/manager"]
