#!/bin/sh
# Installs Node (the node-linux-<arch> package Reef runs on) into /opt/node and
# npm into /opt/npm, both from the npm registry, each checked against the
# integrity the build passes in (the lockfile's for Node, the registry's for npm).
set -eu
: "${NODE_VERSION:?}" "${NODE_INTEGRITY:?}" "${NPM_VERSION:?}" "${NPM_INTEGRITY:?}"
registry="${NPM_REGISTRY:-https://registry.npmjs.org}"
case "$(dpkg --print-architecture)" in
  amd64) arch=x64 ;;
  arm64) arch=arm64 ;;
  *) echo "fetch-node: unsupported architecture $(dpkg --print-architecture)" >&2; exit 1 ;;
esac

fetch() { # name version integrity destination
  tgz="/tmp/$1.tgz"
  curl -fsSL --retry 3 -o "$tgz" "$registry/$1/-/$(basename "$1")-$2.tgz"
  algo="${3%%-*}"
  want="${3#*-}"
  got="$(openssl dgst "-$algo" -binary "$tgz" | openssl base64 -A)"
  if [ "$got" != "$want" ]; then
    echo "fetch-node: $1@$2 does not match its integrity ($3)" >&2
    exit 1
  fi
  mkdir -p "$4"
  tar -xzf "$tgz" -C "$4" --strip-components=1
  rm -f "$tgz"
}

fetch "node-linux-$arch" "$NODE_VERSION" "$NODE_INTEGRITY" /opt/node
fetch npm "$NPM_VERSION" "$NPM_INTEGRITY" /opt/npm
ln -s /opt/node/bin/node /usr/local/bin/node
ln -s /opt/npm/bin/npm-cli.js /usr/local/bin/npm
chmod +x /opt/npm/bin/npm-cli.js
node --version
npm --version
