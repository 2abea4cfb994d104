# Reef itself: the server, the CLI and the built web app, on the Node 24 the
# project installs from npm. Runs as an unprivileged user (uid 10000); only
# /data is writable. Build with deploy/docker/build-images.sh.
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

FROM toolchain AS build
ARG NPM_REGISTRY=https://registry.npmjs.org
WORKDIR /app
# Manifests first, so the dependency layer is reused while only sources change.
COPY package.json package-lock.json ./
COPY packages/config/package.json packages/config/
COPY packages/contracts/package.json packages/contracts/
COPY packages/core/package.json packages/core/
COPY packages/db/package.json packages/db/
COPY packages/runtime/package.json packages/runtime/
COPY packages/testing/package.json packages/testing/
COPY apps/cli/package.json apps/cli/
COPY apps/server/package.json apps/server/
COPY apps/web/package.json apps/web/
RUN npm ci --registry "${NPM_REGISTRY}" --no-audit --no-fund
COPY . .
RUN npm run build:web \
 && npm prune --omit=dev --no-audit --no-fund \
 && npm cache clean --force \
 && rm -rf apps/*/test packages/*/test bench

FROM ${BASE}
LABEL org.opencontainers.image.title="reef"
RUN groupadd --gid 10000 reef \
 && useradd --uid 10000 --gid 10000 --home-dir /data --no-create-home --shell /usr/sbin/nologin reef \
 && mkdir -p /data \
 && chown 10000:10000 /data \
 && chmod 0700 /data
# Owned by root: the reef user can read and run the app but not change it.
COPY --from=build /app /app
WORKDIR /app
USER 10000:10000
ENV HOME=/data REEF_DATA_DIR=/data REEF_HOST=0.0.0.0 REEF_PORT=7420 REEF_LOG_FORMAT=json
EXPOSE 7420
VOLUME ["/data"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["/app/node_modules/.bin/node", "-e", "fetch('http://127.0.0.1:' + (process.env.REEF_PORT || 7420) + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["/app/node_modules/.bin/node", "/app/apps/cli/src/main.ts"]
CMD ["start"]
