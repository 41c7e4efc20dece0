# syntax=docker/dockerfile:1
# One image, two programs: `mega-aggregator` (default) and `mega-collector`.
#   docker build -t mega-collector .
#   docker run --rm mega-collector mega-aggregator --help
#   docker run --rm mega-collector mega-collector --help

# ---- build: dev dependencies, TypeScript compile ----
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY api ./api
COPY src ./src
COPY cmd ./cmd
COPY bench ./bench
COPY support ./support
RUN npm run build

# ---- runtime: production dependencies and dist/ only ----
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY api ./api
RUN ln -s /app/dist/cmd/aggregator/main.js /usr/local/bin/mega-aggregator \
 && ln -s /app/dist/cmd/collector/main.js /usr/local/bin/mega-collector \
 && chmod +x dist/cmd/aggregator/main.js dist/cmd/collector/main.js \
 && mkdir -p /var/lib/mega-collector && chown node:node /var/lib/mega-collector
# Non-root: the official image's `node` user (uid 1000).
USER node
ENV AGGREGATOR_SPOOL_DIR=/var/lib/mega-collector/aggregator \
    COLLECTOR_STATE_DIR=/var/lib/mega-collector/collector
VOLUME ["/var/lib/mega-collector"]
EXPOSE 8000 9464 9465
# /healthz of whichever program runs in this container (see cmd/healthcheck).
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "/app/dist/cmd/healthcheck/main.js"]
CMD ["mega-aggregator"]
