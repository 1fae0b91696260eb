#!/usr/bin/env bash
# Makes sure the browser end-to-end tests can run: Debian's Chromium,
# playwright-core (npm) driving it and axe-core checking the console's
# accessibility. Never downloads a browser build of its own.
set -euo pipefail
cd "$(dirname "$0")/../e2e"
if ! command -v chromium >/dev/null 2>&1; then
  echo "ensure-browser: installing chromium (Debian package)" >&2
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >&2
fi
command -v node >/dev/null || { echo "node is required (Debian nodejs)" >&2; exit 1; }
if [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/@axe-core/playwright ] || [ ! -d node_modules/@modelcontextprotocol/sdk ]; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent
fi
