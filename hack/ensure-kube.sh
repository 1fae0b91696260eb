#!/usr/bin/env bash
# Prints a directory holding kube-apiserver, etcd and the KServe
# InferenceService CRD, building them first when they are not cached.
#
# No kube-apiserver exists in Debian and envtest's downloader needs the
# internet, so both servers are built from the Go module proxy in a throwaway
# module (the project's go.mod is never touched). The result is keyed by every
# version that goes into it, so a cache hit costs milliseconds and a version
# bump builds afresh. Cold: ~15 CPU-minutes on 2 cores.
#
# Used by internal/kubetest (MODELPLANE_KUBE_ASSETS overrides the directory).
set -euo pipefail

K8S_VERSION=v1.36.4   # present in the checksum DB (v1.36.5 is not)
STAGING_VERSION=v0.36.4
ETCD_VERSION=v3.6.8
KSERVE_VERSION=v0.20.0
REV=r1                # bump to force a rebuild with the same versions
CRD_PATH=config/crd/full/serving.kserve.io_inferenceservices.yaml

export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
goos=$(go env GOOS)
goarch=$(go env GOARCH)
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/modelplane/kube"
dest="$cache_root/k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_${goos}-${goarch}_${REV}"

if [ -x "$dest/kube-apiserver" ] && [ -x "$dest/etcd" ] && [ -s "$dest/serving.kserve.io_inferenceservices.yaml" ]; then
  echo "$dest"
  exit 0
fi

log() { echo "ensure-kube: $*" >&2; }
mkdir -p "$cache_root"
work=$(mktemp -d "$cache_root/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
out="$work/out"
mkdir -p "$out"
start=$(date +%s)

# --- KServe CRD (cheap; first so a broken proxy fails fast) -----------------
log "fetching github.com/kserve/kserve@$KSERVE_VERSION for its InferenceService CRD"
kserve_dir=$(cd "$work" && go mod download -json "github.com/kserve/kserve@$KSERVE_VERSION" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
if [ -z "$kserve_dir" ] || [ ! -s "$kserve_dir/$CRD_PATH" ]; then
  log "no $CRD_PATH in github.com/kserve/kserve@$KSERVE_VERSION (dir: '${kserve_dir}')"
  exit 1
fi
cp "$kserve_dir/$CRD_PATH" "$out/serving.kserve.io_inferenceservices.yaml"

# --- kube-apiserver -----------------------------------------------------------
# k8s.io/kubernetes requires its staging modules at v0.0.0 with "=> ./staging/..."
# replaces that only work inside its own repository; mirror that replace block
# with the published staging versions.
log "resolving k8s.io/kubernetes@$K8S_VERSION"
kmod=$(cd "$work" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" |
  sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
if [ -z "$kmod" ] || [ ! -s "$kmod" ]; then
  log "could not download k8s.io/kubernetes@$K8S_VERSION"
  exit 1
fi
mkdir -p "$work/kube"
(
  cd "$work/kube"
  go mod init modelplane.local/kube-tools >/dev/null 2>&1
  staging=$(sed -n 's/^[[:space:]]*\(k8s\.io\/[A-Za-z0-9._/-]*\)[[:space:]]*=>[[:space:]]*\.\/staging\/.*$/\1/p' "$kmod")
  n=0
  for m in $staging; do
    go mod edit -replace="$m=$m@$STAGING_VERSION"
    n=$((n + 1))
  done
  if [ "$n" -lt 20 ]; then
    log "found only $n staging replaces in $kmod; its format changed?"
    exit 1
  fi
  log "replaced $n staging modules with $STAGING_VERSION; go get k8s.io/kubernetes/cmd/kube-apiserver"
  go get "k8s.io/kubernetes@$K8S_VERSION" >&2
  log "building kube-apiserver (the slow part, ~14 CPU-minutes cold)"
  vpkg=k8s.io/component-base/version
  go build -trimpath -o "$out/kube-apiserver" \
    -ldflags "-s -w -X $vpkg.gitVersion=$K8S_VERSION -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=36 -X $vpkg.gitTreeState=clean" \
    k8s.io/kubernetes/cmd/kube-apiserver
)

# --- etcd ---------------------------------------------------------------------
# A module of its own so etcd's and Kubernetes' dependency graphs never mix.
mkdir -p "$work/etcd"
(
  cd "$work/etcd"
  go mod init modelplane.local/etcd-tools >/dev/null 2>&1
  log "go get go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2
  log "building etcd"
  go build -trimpath -o "$out/etcd" -ldflags "-s -w" go.etcd.io/etcd/server/v3
)

"$out/kube-apiserver" --version >&2
"$out/etcd" --version >&2

# Atomic publication: a concurrent run either sees nothing or everything.
rm -rf "$dest.tmp.$$"
mv "$out" "$dest.tmp.$$"
if ! mv -T "$dest.tmp.$$" "$dest" 2>/dev/null; then
  # Another run won the race (dest exists and is non-empty); keep theirs.
  rm -rf "$dest.tmp.$$"
fi
log "done in $(($(date +%s) - start))s"
echo "$dest"
