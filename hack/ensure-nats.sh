#!/usr/bin/env bash
# Prints the URL of a NATS server with JetStream for the event tests:
#   1. MODELPLANE_TEST_NATS_URL if set;
#   2. a server answering on 127.0.0.1:4222 with JetStream;
#   3. else a private nats-server -js on port 54222 with a temporary store,
#      installing Debian's nats-server first if it is missing.
set -euo pipefail
if [ -n "${MODELPLANE_TEST_NATS_URL:-}" ]; then echo "$MODELPLANE_TEST_NATS_URL"; exit 0; fi

# A server on the standard port is used as it is; the tests create their own stream (JetStream must be on).
if (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then echo "nats://127.0.0.1:4222"; exit 0; fi

if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
  echo "ensure-nats: installing nats-server (Debian package)" >&2
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nats-server >&2
fi
bin=$(command -v nats-server || echo /usr/sbin/nats-server)
port=54222
if ! (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
  dir=$(mktemp -d /tmp/modelplane-nats.XXXXXX)
  nohup "$bin" -a 127.0.0.1 -p $port -js -sd "$dir" >"$dir/server.log" 2>&1 &
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
fi
echo "nats://127.0.0.1:$port"
