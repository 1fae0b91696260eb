#!/usr/bin/env bash
# Prints a directory holding what the deploy tests (deploy/deploy_test.go)
# validate with, building or fetching it first when it is not cached:
#
#   helm                                      helm lint / helm template
#   schemacheck                               JSON-schema validator (deploy/tools, a nested module)
#   compose-spec.json                         the official Compose schema
#   monitoring.coreos.com_servicemonitors.yaml  the ServiceMonitor CRD
#
# Everything comes from the Go module proxy (helm has no Debian package and
# no prebuilt binary can be downloaded here); the project's go.mod is never
# touched. The schema and the CRD ship inside Go modules, which are only
# downloaded, never built or required. The directory is keyed by every version
# that goes into it; schemacheck is rebuilt whenever deploy/tools changes
# (its source hash is recorded next to it, and the tests compare it).
#
# Cold: a few CPU-minutes (helm is most of it). Warm: well under a second.
# MODELPLANE_DEPLOY_TOOLS overrides the directory in the tests.
set -euo pipefail

HELM_VERSION=v3.22.0          # helm.sh/helm/v3; installs with `go install` (no replace directives)
COMPOSE_GO_VERSION=v2.16.2    # github.com/compose-spec/compose-go/v2, for schema/compose-spec.json
PROMOP_VERSION=v0.85.0        # github.com/prometheus-operator/prometheus-operator (the newest the proxy serves)
REV=r2                        # bump to force a rebuild with the same versions
CRD_FILE=monitoring.coreos.com_servicemonitors.yaml

export GOTOOLCHAIN=local CGO_ENABLED=0
root=$(cd "$(dirname "$0")/.." && pwd)
tools_src="$root/deploy/tools"
goos=$(go env GOOS)
goarch=$(go env GOARCH)
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/modelplane/deploy-tools"
dest="$cache_root/helm-${HELM_VERSION}_compose-go-${COMPOSE_GO_VERSION}_promop-${PROMOP_VERSION}_${goos}-${goarch}_${REV}"

log() { echo "ensure-deploy-tools: $*" >&2; }

# Hash of the validator's source; the tests compute the same (sorted paths, contents concatenated).
tools_hash() {
  (cd "$tools_src" && find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) | LC_ALL=C sort | xargs cat | sha256sum | cut -d' ' -f1)
}

# go mod download -json prints the module's directory in the cache.
module_dir() {
  (cd "$1" && go mod download -json "$2" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
}

want_hash=$(tools_hash)
if [ -x "$dest/helm" ] && [ -s "$dest/compose-spec.json" ] && [ -s "$dest/$CRD_FILE" ] &&
  [ -x "$dest/schemacheck" ] && [ "$(cat "$dest/schemacheck.sha256" 2>/dev/null)" = "$want_hash" ]; then
  echo "$dest"
  exit 0
fi

mkdir -p "$cache_root"
work=$(mktemp -d "$cache_root/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
# go mod download needs a module to run in, and it must not be ours.
mkdir -p "$work/mod"
(cd "$work/mod" && go mod init modelplane.local/deploy-tools >/dev/null 2>&1)

if [ -x "$dest/helm" ] && [ -s "$dest/compose-spec.json" ] && [ -s "$dest/$CRD_FILE" ]; then
  # Only the validator changed: rebuild it in place (seconds).
  out="$dest"
else
  out="$work/out"
  mkdir -p "$out"

  # --- schema and CRD (cheap; first so a broken proxy fails fast) ------------
  log "fetching github.com/compose-spec/compose-go/v2@$COMPOSE_GO_VERSION for schema/compose-spec.json"
  d=$(module_dir "$work/mod" "github.com/compose-spec/compose-go/v2@$COMPOSE_GO_VERSION")
  if [ -z "$d" ] || [ ! -s "$d/schema/compose-spec.json" ]; then
    log "no schema/compose-spec.json in compose-go@$COMPOSE_GO_VERSION (dir: '$d')"
    exit 1
  fi
  cp "$d/schema/compose-spec.json" "$out/compose-spec.json"

  log "fetching github.com/prometheus-operator/prometheus-operator@$PROMOP_VERSION for the ServiceMonitor CRD"
  d=$(module_dir "$work/mod" "github.com/prometheus-operator/prometheus-operator@$PROMOP_VERSION")
  if [ -z "$d" ] || [ ! -s "$d/example/prometheus-operator-crd/$CRD_FILE" ]; then
    log "no example/prometheus-operator-crd/$CRD_FILE in prometheus-operator@$PROMOP_VERSION (dir: '$d')"
    exit 1
  fi
  cp "$d/example/prometheus-operator-crd/$CRD_FILE" "$out/$CRD_FILE"

  # --- helm -------------------------------------------------------------------
  # `go install pkg@version` builds helm with its own go.mod, outside ours.
  # Helm's Makefile stamps the Kubernetes version it was built against (from
  # its client-go) into the binary; without it `helm template` assumes
  # v1.20 and refuses charts with a newer kubeVersion. Do the same.
  helm_gomod=$(cd "$work/mod" && go mod download -json "helm.sh/helm/v3@$HELM_VERSION" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
  kminor=$(sed -n 's/^[[:space:]]*k8s\.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$helm_gomod" | head -1)
  if [ -z "$kminor" ]; then
    log "cannot find k8s.io/client-go in helm's go.mod ($helm_gomod)"
    exit 1
  fi
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    ldflags="$ldflags -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$kminor"
  done
  log "building helm $HELM_VERSION (Kubernetes 1.$kminor) from the module proxy (the slow part, a few CPU-minutes cold)"
  if GOBIN="$out" GOFLAGS=-trimpath go install -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2; then
    :
  elif [ -x /usr/bin/helm ] || { apt-cache policy helm 2>/dev/null | grep -q 'Candidate: [0-9]'; }; then
    # Fallback: a distribution package (Debian has none today; kept for other bases).
    log "go install failed; using the helm package"
    command -v helm >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq helm >&2
    cp "$(command -v helm)" "$out/helm"
  else
    log "could not build helm $HELM_VERSION and no helm package exists"
    exit 1
  fi
  "$out/helm" version --short >&2
fi

# --- schemacheck (deploy/tools, its own go.mod and go.sum) ----------------------
log "building schemacheck from deploy/tools"
(cd "$tools_src" && GOFLAGS=-mod=readonly go build -trimpath -ldflags "-s -w" -o "$out/schemacheck" ./schemacheck)
echo "$want_hash" >"$out/schemacheck.sha256"

if [ "$out" != "$dest" ]; then
  # Atomic publication: a concurrent run either sees nothing or everything.
  rm -rf "$dest.tmp.$$"
  mv "$out" "$dest.tmp.$$"
  if ! mv -T "$dest.tmp.$$" "$dest" 2>/dev/null; then
    # Another run won the race, or an older copy is there: replace it.
    rm -rf "$dest.old.$$"
    mv -T "$dest" "$dest.old.$$" 2>/dev/null || true
    mv -T "$dest.tmp.$$" "$dest" 2>/dev/null || rm -rf "$dest.tmp.$$"
    rm -rf "$dest.old.$$"
  fi
fi
log "done in $(($(date +%s) - start))s"
echo "$dest"
