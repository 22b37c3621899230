import { Redis } from "ioredis";
import type { Logger } from "pino";
import { createAnalyticsModule, createDynamoClient, createDynamoFeatureStore } from "../modules/analytics/index.ts";
import { createInventoryModule } from "../modules/inventory/index.ts";
import { createNotificationsModule } from "../modules/notifications/index.ts";
import { createOrdersModule } from "../modules/orders/index.ts";
import { createPaymentsModule, createSimulatedProvider } from "../modules/payments/index.ts";
import { createPostsModule } from "../modules/posts/index.ts";
import { createSearchModule } from "../modules/search/index.ts";
import { createMemoryTimelineCache, createRedisTimelineCache, createTimelinesModule } from "../modules/timelines/index.ts";
import { createUsersModule } from "../modules/users/index.ts";
import { createOutbox, type Outbox } from "../outbox/index.ts";
import { createKinesisClient } from "../outbox/sinks/index.ts";
import type { Config } from "./config.ts";
import { connectDatabase, type Database } from "./db/client.ts";
import { type EmbeddedDatabase, startEmbeddedPostgres } from "./db/embedded.ts";
import { pendingMigrations, runMigrations } from "./db/migrate.ts";
import { EventRegistry } from "./events/registry.ts";
import { createHttpApp, nativeRoutes } from "./http/app.ts";
import { createJwtAuth } from "./http/auth.ts";
import { healthResponse } from "./http/edge.ts";
import type { RateLimiter } from "./http/env.ts";
import { createPgIdempotencyStore } from "./http/idempotency.ts";
import { createMemoryRateLimiter } from "./http/rate-limit.ts";
import { createRedisRateLimiter } from "./http/rate-limit-redis.ts";
import type { ModuleDefinition } from "./modules.ts";
import { createLogger } from "./observability/logger.ts";
import { createMetrics } from "./observability/metrics.ts";
import { type ResolvedConfig, resolveSecrets } from "./secrets.ts";

/** Server is the composed application: the Hono app plus what it owns. */
export interface Server {
  readonly app: ReturnType<typeof createHttpApp>;
  /** The configuration with its secrets resolved (configured, kept in SECRETS_FILE, or generated). */
  readonly config: ResolvedConfig;
  readonly database: Database;
  readonly outbox: Outbox;
  readonly modules: readonly ModuleDefinition[];
  readonly rateLimiter: RateLimiter;
  readonly log: Logger;
  /** listen starts Bun.serve on config.PORT (0 picks a free port) and returns the port. */
  listen(): number;
  /** stop stops accepting, drains in-flight requests and worker batches, closes pools. */
  stop(): Promise<void>;
}

/** ALL_MODULES lists every module this build knows, in start-up order. */
export const ALL_MODULES = ["users", "posts", "timelines", "search", "inventory", "orders", "payments", "notifications", "analytics"] as const;

/**
 * createServer composes the application from a config: database (embedded when DATABASE_URL
 * is unset), migrations, modules, outbox, HTTP app. Nothing listens until `listen()`.
 */
export async function createServer(given: Config, opts: { log?: Logger } = {}): Promise<Server> {
  const log = opts.log ?? createLogger(given.LOG_LEVEL);
  const config = await resolveSecrets(given, log);
  const unknown = (config.MODULES ?? []).filter((m) => !(ALL_MODULES as readonly string[]).includes(m));
  if (unknown.length) throw new Error(`MODULES names unknown modules: ${unknown.join(", ")} (known: ${ALL_MODULES.join(", ")})`);
  const hosted = new Set(config.MODULES ?? ALL_MODULES);

  let embedded: EmbeddedDatabase | undefined;
  let url = config.DATABASE_URL;
  if (!url) {
    embedded = await startEmbeddedPostgres(config.EMBEDDED_PG_DIR, config.EMBEDDED_PG_PORT, (m) => log.info(m));
    url = embedded.url;
  }
  await runMigrations(url, config.MIGRATIONS_DIR);
  const database = connectDatabase(url, {
    max: config.DATABASE_POOL_MAX,
    onCallbackError: (err) => log.error({ err }, "afterCommit callback failed (its transaction committed)"),
  });
  const metrics = config.METRICS_ENABLED ? createMetrics() : undefined;

  // Auto-pipelining sends the commands issued in one tick (concurrent requests' rate-limit hits) in one write.
  // Timeouts bound every command, so a Redis that hangs costs a request at most REDIS_COMMAND_TIMEOUT_MS.
  const timeouts = { connectTimeout: config.REDIS_CONNECT_TIMEOUT_MS, commandTimeout: config.REDIS_COMMAND_TIMEOUT_MS };
  const redis = config.REDIS_URL
    ? new Redis(config.REDIS_URL, { maxRetriesPerRequest: 2, enableOfflineQueue: true, lazyConnect: false, enableAutoPipelining: true, ...timeouts })
    : undefined;
  // The timeline cache has a client of its own that fails at once while disconnected (no offline
  // queue, no retries): a cache that cannot answer now is a miss, served from Postgres.
  const cacheRedis =
    config.REDIS_URL && config.TIMELINE_CACHE_TTL_SECONDS > 0
      ? new Redis(config.REDIS_URL, {
          maxRetriesPerRequest: 0,
          enableOfflineQueue: false,
          lazyConnect: false,
          enableAutoPipelining: true,
          retryStrategy: (times) => Math.min(times * 100, 2000),
          ...timeouts,
        })
      : undefined;
  let redisDown = false;
  for (const [client, role] of [
    [redis, "rate limits"],
    [cacheRedis, "timeline cache"],
  ] as const) {
    // Without a listener ioredis prints every failed reconnect; one warning per outage is enough.
    client?.on("error", (err) => {
      if (!redisDown) log.warn({ err, role }, "redis unreachable; degrading (rate limits in process, timelines from Postgres)");
      redisDown = true;
    });
    client?.on("ready", () => {
      if (redisDown) log.info({ role }, "redis reachable again");
      redisDown = false;
    });
  }
  const limits = { max: config.RATE_LIMIT_MAX, ipMax: config.RATE_LIMIT_IP_MAX, windowSeconds: config.RATE_LIMIT_WINDOW_SECONDS };
  const onLimitError = (err: unknown) => log.debug({ err }, "rate limit counted in process: redis failed");
  const rateLimiter = redis
    ? createRedisRateLimiter(redis, { ...limits, syncMs: config.RATE_LIMIT_SYNC_MS, onError: onLimitError })
    : createMemoryRateLimiter(limits);
  const signInLimits = { max: config.SIGNIN_MAX_FAILURES, windowSeconds: config.SIGNIN_WINDOW_SECONDS, prefix: "signin:" };
  // Sign-in failures are few and their budget small: every one is counted in Redis at once.
  const signInLimiter = redis ? createRedisRateLimiter(redis, { ...signInLimits, syncMs: 0, onError: onLimitError }) : createMemoryRateLimiter(signInLimits);
  const cacheOptions = {
    ttlSeconds: config.TIMELINE_CACHE_TTL_SECONDS,
    onError: (err: unknown, op: string) => log.debug({ err, op }, "timeline cache skipped: redis failed"),
  };
  // A TTL of 0 turns the cache off: every read goes to Postgres.
  const timelineCache =
    config.TIMELINE_CACHE_TTL_SECONDS === 0
      ? undefined
      : cacheRedis
        ? createRedisTimelineCache(cacheRedis, { ...cacheOptions, localEntries: config.TIMELINE_CACHE_LOCAL_ENTRIES })
        : createMemoryTimelineCache(cacheOptions);
  // Every request's token is checked against its account (read through the users module, cached briefly).
  const auth = createJwtAuth(config.JWT_SECRET, config.JWT_TTL_SECONDS, {
    accounts: (id) => users.api.sessionState(id),
    accountCacheMs: config.AUTH_ACCOUNT_CACHE_MS,
  });

  const registry = new EventRegistry();
  const outbox = createOutbox({
    database,
    registry,
    log: log.child({ component: "outbox" }),
    metrics: metrics?.outbox,
    pollMs: config.WORKER_POLL_MS,
    batchSize: config.WORKER_BATCH_SIZE,
    relaxedDeliveryCommit: config.WORKER_RELAXED_COMMIT,
    sinks: {
      region: config.AWS_REGION,
      eventBridgeEndpoint: config.AWS_ENDPOINT_URL_EVENTBRIDGE ?? config.AWS_ENDPOINT_URL,
      kinesisEndpoint: config.AWS_ENDPOINT_URL_KINESIS ?? config.AWS_ENDPOINT_URL,
      eventBridgeBusName: config.EVENTBRIDGE_BUS_NAME,
      eventBridgeSourcePrefix: config.EVENTBRIDGE_SOURCE_PREFIX,
      kinesisStreamName: config.KINESIS_STREAM_NAME,
    },
  });

  const users = createUsersModule({
    db: database.db,
    outbox: outbox.appender,
    tokens: auth,
    admin: { username: config.ADMIN_USERNAME, email: config.ADMIN_EMAIL, password: config.ADMIN_PASSWORD },
  });
  const posts = createPostsModule({ db: database.db, outbox: outbox.appender, users: users.api });
  const timelines = createTimelinesModule({
    db: database.db,
    posts: posts.api,
    inactiveDays: config.TIMELINE_INACTIVE_DAYS,
    celebrityThreshold: config.CELEBRITY_FOLLOWER_THRESHOLD,
    cache: timelineCache,
    cacheTtlSeconds: config.TIMELINE_CACHE_TTL_SECONDS,
  });
  const search = createSearchModule({ db: database.db, posts: posts.api });
  const inventory = createInventoryModule({ db: database.db, outbox: outbox.appender });
  const orders = createOrdersModule({
    db: database.db,
    outbox: outbox.appender,
    inventory: inventory.api,
    snapshotEvery: config.ORDER_SNAPSHOT_EVERY,
    paymentTimeoutMs: config.PAYMENT_TIMEOUT,
    onBackgroundError: (err) => log.error({ err }, "saga timer round failed"),
  });
  const payments = createPaymentsModule({
    db: database.db,
    outbox: outbox.appender,
    provider: createSimulatedProvider(),
    orders: orders.api,
    // A processor call holds its delivery's transaction open (and with it the log's read horizon):
    // bound it tightly, well inside the saga's own deadline.
    callTimeoutMs: Math.min(2000, Math.max(100, Math.round(config.PAYMENT_TIMEOUT / 3))),
  });
  const notifications = createNotificationsModule({
    db: database.db,
    outbox: outbox.appender,
    users: users.api,
    posts: posts.api,
    heartbeatMs: config.NOTIFICATIONS_HEARTBEAT_MS,
    celebrityThreshold: config.CELEBRITY_FOLLOWER_THRESHOLD,
    maxStreamsPerUser: config.NOTIFICATIONS_MAX_STREAMS_PER_USER,
    onError: (err, what) => log.warn({ err, what }, "notification streams"),
  });
  const analytics = createAnalyticsModule({
    db: database.db,
    outbox: outbox.appender,
    inventory: inventory.api,
    orders: orders.api,
    ingestKey: config.ANALYTICS_INGEST_KEY,
    allowedLatenessMs: config.ANALYTICS_ALLOWED_LATENESS,
    sessionsLingerMs: config.ANALYTICS_SESSIONS_LINGER,
    featuresLingerMs: config.ANALYTICS_FEATURES_LINGER,
    retentionDays: config.ANALYTICS_RETENTION_DAYS,
    onBackgroundError: (err) => log.error({ err }, "clickstream partition maintenance failed"),
    onLateEvents: metrics ? (aggregate, n) => metrics.lateEvents(aggregate, n) : undefined,
    featureStore: config.FEATURE_STORE_TABLE
      ? createDynamoFeatureStore({
          client: createDynamoClient(config.AWS_REGION, config.AWS_ENDPOINT_URL_DYNAMODB ?? config.AWS_ENDPOINT_URL),
          tableName: config.FEATURE_STORE_TABLE,
        })
      : undefined,
    kinesis: config.ANALYTICS_KINESIS_STREAM
      ? {
          client: createKinesisClient(config.AWS_REGION, config.AWS_ENDPOINT_URL_KINESIS ?? config.AWS_ENDPOINT_URL),
          streamName: config.ANALYTICS_KINESIS_STREAM,
          log: log.child({ component: "analytics.kinesis" }),
        }
      : undefined,
  });
  const all: ModuleDefinition[] = [users, posts, timelines, search, inventory, orders, payments, notifications, analytics];
  // Every module's event types are known everywhere (validation, catalog); only hosted ones run.
  for (const m of all) registry.register(...m.events);
  const modules = all.filter((m) => hosted.has(m.name as (typeof ALL_MODULES)[number]));
  const servesApi = config.ROLES.includes("api");
  const runsWorkers = config.ROLES.includes("worker");
  for (const m of modules) outbox.subscribe(m.subscriptions ?? []);
  for (const m of all) if (!modules.includes(m)) outbox.declareElsewhere(m.subscriptions ?? []);

  const app = createHttpApp(
    {
      log,
      verifyToken: auth.verify,
      rateLimiter,
      signInLimiter,
      idempotencyStore: createPgIdempotencyStore(database.db, config.IDEMPOTENCY_TTL_SECONDS),
      bodyLimitBytes: config.BODY_LIMIT_BYTES,
      corsOrigins: config.CORS_ORIGINS,
      trustProxy: config.TRUST_PROXY,
      servesApi,
      readiness: async () => {
        const failed: string[] = [];
        try {
          await database.sql`select 1`;
          if ((await pendingMigrations(database.sql, config.MIGRATIONS_DIR)) > 0) failed.push("migrations");
        } catch {
          failed.push("database");
        }
        // Redis is not a readiness condition: without it rate limits count in process and
        // timelines come from Postgres. Failing here would take every replica out of rotation at
        // once when Redis goes, turning a degraded service into an outage (the log says it is down).
        return failed;
      },
      metrics: metrics ? () => metrics.render(outbox) : undefined,
      metricsToken: config.METRICS_TOKEN,
    },
    (api) => {
      for (const m of modules) m.routes?.(api);
      outbox.routes(api);
    },
  );

  for (const m of modules) await m.start?.();
  if (runsWorkers) await outbox.start();
  const background = runsWorkers ? modules.flatMap((m) => m.background ?? []) : [];
  for (const task of background) task.start();

  let server: ReturnType<typeof Bun.serve> | undefined;
  let stopping: Promise<void> | undefined;
  return {
    app,
    config,
    database,
    outbox,
    modules,
    rateLimiter,
    log,
    listen() {
      server = Bun.serve({
        port: config.PORT,
        hostname: config.HOST,
        // The liveness probe is answered by Bun's own router (GET, and HEAD through it), before
        // any JavaScript routing: the same answer the app's /health route gives. So are the hot
        // reads declared with `nativeGet` (the same answers as their Hono routes; the rest of
        // their requests, HEAD included, are handed to the app).
        routes: { "/health": { GET: (req) => healthResponse(req.headers) }, ...nativeRoutes(app) },
        fetch: app.fetch,
        maxRequestBodySize: Math.max(config.BODY_LIMIT_BYTES * 2, 1 << 30),
      });
      log.info({ port: server.port, roles: config.ROLES, modules: modules.map((m) => m.name) }, "listening");
      return server.port!;
    },
    stop() {
      stopping ??= (async () => {
        // The listener closes at once (new connections are refused); in-flight requests and worker
        // batches get until the deadline, then their connections are cut.
        let timer: ReturnType<typeof setTimeout> | undefined;
        const deadline = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), config.SHUTDOWN_TIMEOUT_MS)));
        // Modules end what would hold the drain (open event streams) as it starts; background loops stop with the workers.
        const drain = Promise.allSettled([server?.stop(false), outbox.stop(), ...background.map((t) => t.stop()), ...modules.map((m) => m.stop?.())]);
        const outcome = await Promise.race([drain, deadline]);
        clearTimeout(timer);
        if (outcome === "timeout") {
          log.warn("shutdown deadline reached; closing remaining connections");
          await server?.stop(true);
        } else {
          for (const r of outcome) if (r.status === "rejected") log.error({ err: r.reason }, "error while draining");
        }
        // Pools and the embedded database close even when draining failed: nothing is left running.
        try {
          await database.close(2);
        } finally {
          redis?.disconnect();
          timelineCache?.close?.();
          cacheRedis?.disconnect();
          await embedded?.stop();
        }
      })();
      return stopping;
    },
  };
}
