#!/usr/bin/env bash
# Prints the path of the official MCP registry server binary
# (github.com/modelcontextprotocol/registry/cmd/registry), building it first
# when it is not cached.
#
# The binary is built with `go install module@version` outside any module, so
# the project's go.mod is never touched and the registry's own dependency
# versions (newer golang.org/x/sys and friends) never leak into ours. The result
# is keyed by version, platform and a revision, so a cache hit costs
# milliseconds and a version bump builds afresh. Cold: about 3 minutes on
# 2 cores.
#
# Used by internal/registrytest (MODELPLANE_MCP_REGISTRY_BIN overrides the path).
set -euo pipefail

REGISTRY_VERSION=v1.8.7
REV=r1                # bump to force a rebuild with the same version

export GOTOOLCHAIN=local CGO_ENABLED=0 GO111MODULE=on
unset GOFLAGS
goos=$(go env GOOS)
goarch=$(go env GOARCH)
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/modelplane/mcp-registry"
dest="$cache_root/${REGISTRY_VERSION}_${goos}-${goarch}_${REV}"

if [ -x "$dest/registry" ]; then
  echo "$dest/registry"
  exit 0
fi

log() { echo "ensure-mcp-registry: $*" >&2; }
mkdir -p "$cache_root"
work=$(mktemp -d "$cache_root/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
start=$(date +%s)

log "building github.com/modelcontextprotocol/registry/cmd/registry@$REGISTRY_VERSION (cold: ~3 min)"
# Run from the throwaway directory so no go.mod is in scope.
(
  cd "$work"
  GOBIN="$work/bin" go install -trimpath -ldflags='-s -w' \
    "github.com/modelcontextprotocol/registry/cmd/registry@$REGISTRY_VERSION"
)
if [ ! -x "$work/bin/registry" ]; then
  log "go install produced no registry binary"
  exit 1
fi

# Publish atomically: another process may have raced us to the same key.
if ! mv -T "$work/bin" "$dest" 2>/dev/null; then
  if [ ! -x "$dest/registry" ]; then
    log "could not move the build into $dest"
    exit 1
  fi
fi
log "built in $(( $(date +%s) - start ))s"
echo "$dest/registry"
