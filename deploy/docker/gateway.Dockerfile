# The OpenClaw gateway one Reef workspace runs, built from the npm package at the
# version Reef pins (packages/runtime/package.json), so operators are not tied to
# an upstream image tag. Build with deploy/docker/build-images.sh, which passes
# the versions and checksums below from the lockfile.
ARG BASE=debian:bookworm-slim

FROM ${BASE} AS toolchain
ARG NODE_VERSION
ARG NODE_INTEGRITY
ARG NPM_VERSION
ARG NPM_INTEGRITY
ARG NPM_REGISTRY=https://registry.npmjs.org
# PEM certificates to trust while building, for networks whose proxy
# re-signs TLS (build-images.sh --ca-file). Not carried into the final image.
ARG EXTRA_CA_CERTS=""
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
COPY deploy/docker/fetch-node.sh /usr/local/bin/fetch-node
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends curl ca-certificates >/dev/null \
 && rm -rf /var/lib/apt/lists/* \
 && if [ -n "${EXTRA_CA_CERTS}" ]; then \
      printf '%s\n' "${EXTRA_CA_CERTS}" > /usr/local/share/ca-certificates/build-extra.crt \
      && update-ca-certificates >/dev/null; \
    fi \
 && sh /usr/local/bin/fetch-node

FROM toolchain AS install
ARG OPENCLAW_VERSION
ARG NPM_REGISTRY=https://registry.npmjs.org
RUN test -n "${OPENCLAW_VERSION}" \
 && mkdir -p /opt/openclaw \
 && cd /opt/openclaw \
 && echo '{"name":"reef-gateway","private":true}' > package.json \
 && npm install --registry "${NPM_REGISTRY}" --omit=dev --no-audit --no-fund --save-exact "openclaw@${OPENCLAW_VERSION}" \
 && npm cache clean --force

FROM ${BASE}
ARG OPENCLAW_VERSION
LABEL org.opencontainers.image.title="reef-gateway" \
      dev.reef.openclaw-version="${OPENCLAW_VERSION}"
COPY --from=toolchain /opt/node/bin/node /usr/local/bin/node
COPY --from=install /opt/openclaw /opt/openclaw
COPY deploy/docker/gateway-entry.sh /usr/local/bin/reef-gateway-entry
# uid 10001 is the gateway user of Reef's container profile (GATEWAY_UID). /state
# is owned by it for an anonymous volume; Reef's docker driver also sets the
# ownership of the named volume it mounts there itself.
# socat relays the container's port to OpenClaw on loopback (see reef-gateway-entry).
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends socat >/dev/null \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 openclaw \
 && useradd --uid 10001 --gid 10001 --home-dir /state/home --no-create-home --shell /usr/sbin/nologin openclaw \
 && mkdir -p /state \
 && chown 10001:10001 /state \
 && chmod 0700 /state
USER 10001:10001
ENV HOME=/state/home OPENCLAW_STATE_DIR=/state
WORKDIR /state
EXPOSE 18789
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["/usr/local/bin/node", "-e", "fetch('http://127.0.0.1:18789/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["/usr/local/bin/reef-gateway-entry"]
CMD ["18789"]
