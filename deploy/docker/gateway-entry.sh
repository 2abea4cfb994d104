#!/bin/sh
# reef-gateway-entry PORT: the gateway container's entry point.
#
# OpenClaw grants a token-only backend client (Reef) its operator scopes only
# when it connects from loopback; from any other address it must pair a device
# first. So, as the process driver does with its socket bridge, OpenClaw listens
# on the container's loopback and socat relays the container's PORT to it. Who
# may reach PORT at all is the network's business (a network per workspace,
# NetworkPolicy); the gateway token is still required on every connection.
set -eu
port="${1:?usage: reef-gateway-entry PORT}"
# OpenClaw claims ports above its own (up to +110): keep the relay's port out of that block.
inner=$((port + 10000))
socat "TCP-LISTEN:${port},fork,reuseaddr,backlog=128" "TCP:127.0.0.1:${inner}" &
exec /usr/local/bin/node /opt/openclaw/node_modules/openclaw/openclaw.mjs \
  gateway run --port "$inner" --bind loopback --auth token
