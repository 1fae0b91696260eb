#!/usr/bin/env bash
# Installs the real monitoring stack the tests start on 127.0.0.1:
# Debian's prometheus and prometheus-alertmanager (binaries only; the tests
# run them with temporary configs and data directories, never as services).
set -euo pipefail
missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || command -v alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
if [ ${#missing[@]} -gt 0 ]; then
  echo "ensure-monitoring: installing ${missing[*]} (Debian packages)" >&2
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >&2
fi
