#!/usr/bin/env bash
# install-tools.sh — install, with apt-get, the Debian packages that provide the tools a make
# target or script needs, and only those that are missing.
#
#   hack/install-tools.sh [--if-root] TOOL...
#
# TOOL is a command (fio, protoc, mkfs.xfs, ...) or a file (/usr/lib/cni/bridge) listed in the
# table below, which names the Debian package that provides it. A tool already present is left
# alone, so running the script twice installs nothing the second time. Installing needs root:
# without it the script names the missing packages and exits 1, or, with --if-root, prints that
# note and exits 0 (for tools whose tests skip themselves when the tool is absent).
# Progress goes to stderr; apt-get's own output to stdout.
set -euo pipefail

die() { echo "install-tools: $*" >&2; exit 1; }

# package_of TOOL prints the Debian package that provides TOOL.
package_of() {
  case $1 in
  fio) echo fio ;;
  protoc) echo protobuf-compiler ;;
  # The well-known types (google/protobuf/timestamp.proto, ...) that .proto files import: only a
  # recommendation of protobuf-compiler, which --no-install-recommends leaves out.
  /usr/include/google/protobuf/timestamp.proto) echo libprotobuf-dev ;;
  mkfs.ext4) echo e2fsprogs ;;
  mkfs.xfs) echo xfsprogs ;;
  losetup) echo util-linux ;;
  mount) echo mount ;;
  containerd) echo containerd ;;
  runc) echo runc ;;
  /usr/lib/cni/bridge) echo containernetworking-plugins ;;
  iptables) echo iptables ;;
  conntrack) echo conntrack ;;
  openssl) echo openssl ;;
  curl) echo curl ;;
  *) return 1 ;;
  esac
}

# present TOOL: a file exists at TOOL's path, or TOOL is a command on PATH.
present() {
  if [[ $1 == /* ]]; then [ -e "$1" ]; else command -v "$1" >/dev/null; fi
}

if_root=0
if [ "${1:-}" = --if-root ]; then if_root=1; shift; fi
[ $# -gt 0 ] || die "usage: hack/install-tools.sh [--if-root] TOOL..."

missing=() pkgs=()
for tool in "$@"; do
  pkg=$(package_of "$tool") || die "no package known for '$tool'; add it to the table in $0"
  present "$tool" && continue
  missing+=("$tool")
  [[ " ${pkgs[*]} " == *" $pkg "* ]] || pkgs+=("$pkg")
done
[ ${#pkgs[@]} -gt 0 ] || exit 0

if [ "$(id -u)" -ne 0 ]; then
  msg="missing ${missing[*]}; as root, run: apt-get install ${pkgs[*]}"
  if [ $if_root = 1 ]; then echo "install-tools: $msg (the tests that need them skip)" >&2; exit 0; fi
  die "$msg"
fi
command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get here; install ${pkgs[*]} with this system's package manager"

echo "install-tools: apt-get install ${pkgs[*]} (for ${missing[*]})" >&2
# A fresh machine (or container) has no package lists yet; refresh them once before installing.
apt-get update -q || die "apt-get update failed"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 \
  "${pkgs[@]}" || die "apt-get install ${pkgs[*]} failed"
for tool in "${missing[@]}"; do
  present "$tool" || die "installed ${pkgs[*]}, but '$tool' is still missing"
done
