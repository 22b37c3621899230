# syntax=docker/dockerfile:1

# Production dependencies only, resolved exactly as bun.lock says.
FROM oven/bun:1 AS deps
WORKDIR /app
COPY package.json bun.lock ./
# postgres.js is installed with the fixes in patches/ (see src/db/driver-internals.ts).
COPY patches ./patches
RUN bun install --frozen-lockfile --production

FROM oven/bun:1 AS runtime
WORKDIR /app
# No secret is baked in, and production generates none: the container refuses to start (exit 2,
# naming them) until JWT_SECRET (32+ characters), ADMIN_PASSWORD (12+), DATABASE_URL and
# METRICS_TOKEN (16+; or METRICS_ENABLED=false) are given
# at run time, e.g. `docker run -e JWT_SECRET=... -e ADMIN_PASSWORD=... -e DATABASE_URL=...`, or
# from your orchestrator's secret store. Never put them in ENV here: image layers are readable.
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    MIGRATIONS_DIR=/app/migrations
COPY --from=deps /app/node_modules ./node_modules
COPY package.json bun.lock tsconfig.json ./
COPY src ./src
COPY modules ./modules
COPY outbox ./outbox
COPY migrations ./migrations
# The image's unprivileged user; the code stays root-owned so the process cannot rewrite it.
USER bun
EXPOSE 3000
# curl is not in the image; bun itself probes. Start period covers migrations at start-up.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["bun", "-e", "const r = await fetch(`http://127.0.0.1:${process.env.PORT ?? 3000}/health`).catch(() => null); process.exit(r?.ok ? 0 : 1)"]
# Exec form: bun is PID 1 and receives SIGTERM itself, so it drains requests before exiting.
CMD ["bun", "src/main.ts"]
