#!/usr/bin/env bash
# Builds Reef's two images from this checkout: reef:<version> and
# reef-gateway:<openclaw version>. Versions and checksums come from the
# lockfile, so the images run exactly what `npm ci` installs.
#
#   deploy/docker/build-images.sh [--base IMAGE] [--only reef|gateway]
#
# --base: the Debian bookworm image both build from (default debian:bookworm-slim;
# CI passes a locally imported one, since it cannot pull).
# --ca-file: PEM certificates to trust during the build, where a proxy re-signs
# TLS to the npm registry (the final images do not keep them).
set -euo pipefail
cd "$(dirname "$0")/../.."

base="debian:bookworm-slim"
only=""
ca_file=""
while [ $# -gt 0 ]; do
  case "$1" in
    --base) base="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --ca-file) ca_file="$2"; shift 2 ;;
    *) echo "usage: $0 [--base IMAGE] [--only reef|gateway] [--ca-file PEM]" >&2; exit 64 ;;
  esac
done

node_bin="node"
[ -x node_modules/.bin/node ] && node_bin="node_modules/.bin/node"
read_lock() { # prints "version integrity" of a package in package-lock.json
  "$node_bin" -e '
    const lock = require("./package-lock.json");
    const p = lock.packages["node_modules/" + process.argv[1]];
    if (!p) { console.error("not in the lockfile: " + process.argv[1]); process.exit(1); }
    console.log(p.version + " " + p.integrity);' "$1"
}
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) echo "unsupported architecture $(uname -m)" >&2; exit 1 ;;
esac
read -r node_version node_integrity < <(read_lock "node-linux-$arch")
read -r openclaw_version _ < <(read_lock openclaw)
reef_version="$("$node_bin" -p 'require("./package.json").version')"
npm_version="$(npm --version)"
npm_integrity="$(npm view "npm@$npm_version" dist.integrity)"

common=(
  --build-arg "BASE=$base"
  --build-arg "NODE_VERSION=$node_version"
  --build-arg "NODE_INTEGRITY=$node_integrity"
  --build-arg "NPM_VERSION=$npm_version"
  --build-arg "NPM_INTEGRITY=$npm_integrity"
)
[ -n "$ca_file" ] && common+=(--build-arg "EXTRA_CA_CERTS=$(cat "$ca_file")")
if [ -z "$only" ] || [ "$only" = gateway ]; then
  echo "--- building reef-gateway:$openclaw_version (OpenClaw $openclaw_version, Node $node_version, base $base)"
  docker build -q "${common[@]}" --build-arg "OPENCLAW_VERSION=$openclaw_version" \
    -f deploy/docker/gateway.Dockerfile -t "reef-gateway:$openclaw_version" .
fi
if [ -z "$only" ] || [ "$only" = reef ]; then
  echo "--- building reef:$reef_version (Node $node_version, base $base)"
  docker build -q "${common[@]}" -f deploy/docker/reef.Dockerfile -t "reef:$reef_version" -t reef:latest .
fi
