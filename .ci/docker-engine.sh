#!/usr/bin/env bash
# Brings up a real Docker engine for the docker-driver and compose tests and
# builds Reef's images on it. Nothing can be pulled here, so the Debian base is
# made with mmdebstrap and imported. Where no engine can start, it says why and
# returns 0: those tests then skip with the same reason.
set -uo pipefail
cd "$(dirname "$0")/.."
BASE_TAG="reef-base:bookworm"

engine_up() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

if ! command -v dockerd >/dev/null 2>&1 || ! command -v mmdebstrap >/dev/null 2>&1 || ! command -v docker-compose >/dev/null 2>&1; then
  echo "--- installing docker.io, docker-compose and mmdebstrap"
  apt-get update -qq >/dev/null 2>&1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io docker-compose mmdebstrap >/dev/null \
    || { echo "--- docker: could not install docker.io; docker tests will skip"; exit 0; }
fi
if ! engine_up; then
  echo "--- starting dockerd"
  (dockerd >/tmp/reef-ci-dockerd.log 2>&1 &)
  for _ in $(seq 1 60); do engine_up && break; sleep 0.5; done
  if ! engine_up; then
    echo "--- docker: dockerd did not come up; docker tests will skip. Its log:"
    tail -20 /tmp/reef-ci-dockerd.log
    exit 0
  fi
fi
echo "--- docker engine $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')"

if ! docker image inspect "$BASE_TAG" >/dev/null 2>&1; then
  echo "--- making the Debian base image $BASE_TAG with mmdebstrap"
  tar="$(mktemp -d)/base.tar"
  mmdebstrap --quiet --variant=apt --include=ca-certificates bookworm "$tar" \
    && docker import "$tar" "$BASE_TAG" >/dev/null
  rm -f "$tar"
fi
# This network's proxy re-signs TLS; its CA must be trusted inside the builds.
ca_args=()
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  ca="$(mktemp)"
  cat /usr/local/share/ca-certificates/*.crt >"$ca"
  ca_args=(--ca-file "$ca")
fi
start=$(date +%s)
deploy/docker/build-images.sh --base "$BASE_TAG" "${ca_args[@]}" \
  || { echo "--- docker: building the images failed; docker tests will skip"; exit 0; }
echo "--- images built in $(($(date +%s) - start)) s"
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^reef' || true
# The compose test's Postgres stand-in (no registry to pull postgres from), tagged
# as apps/server/test/compose.test.ts names it: by the hash of its files.
pg_fixture=apps/server/test/fixtures/compose-postgres
pg_tag="reef-test-postgres:$(cat "$pg_fixture/Dockerfile" "$pg_fixture/entrypoint.sh" | sha256sum | cut -c1-12)"
if ! docker image inspect "$pg_tag" >/dev/null 2>&1; then
  start=$(date +%s)
  docker build -q --build-arg "BASE=$BASE_TAG" -t "$pg_tag" "$pg_fixture" >/dev/null \
    && echo "--- built $pg_tag in $(($(date +%s) - start)) s" \
    || echo "--- could not build $pg_tag; the compose test builds it itself"
fi
