import { z } from "zod";

/**
 * SECRET_KEYS have no default anywhere in the source: production refuses to start without them;
 * elsewhere a missing one is generated on first start and kept in SECRETS_FILE (see src/secrets.ts).
 */
export const SECRET_KEYS = ["JWT_SECRET", "ADMIN_PASSWORD"] as const;

const csv = z.string().transform((s) =>
  s
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean),
);

const bool = z.enum(["true", "false", "1", "0", "yes", "no"]).transform((v) => v === "true" || v === "1" || v === "yes");

const int = (def: number, min = 0) => z.coerce.number().int().min(min).default(def);

/**
 * duration reads a time span as milliseconds: a number of seconds (`30`, `0.5`) or a number with
 * a unit (`500ms`, `30s`, `2m`), from 1 ms (from 0 with `min: 0`, for a wait that may be off) to 24 h.
 */
const duration = (def: string, { min = 1 }: { min?: 0 | 1 } = {}) =>
  z
    .string()
    .default(def)
    .transform((v, ctx) => {
      const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/.exec(v);
      const ms = m ? Number(m[1]) * (m[2] === "ms" ? 1 : m[2] === "m" ? 60_000 : 1000) : Number.NaN;
      if (!Number.isFinite(ms) || ms < min || ms > 24 * 3600_000) {
        ctx.addIssue({ code: "custom", message: `a duration from ${min} ms to 24 h: seconds (30, 0.5) or with a unit (500ms, 30s, 2m)` });
        return z.NEVER;
      }
      return Math.round(ms);
    });

const EnvSchema = z.object({
  NODE_ENV: z.enum(["development", "test", "production"]).default("development"),
  PORT: int(3000, 0).pipe(z.number().max(65535)),
  HOST: z.string().default("0.0.0.0"),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).optional(),
  DATABASE_POOL_MAX: int(10, 1),
  EMBEDDED_PG_DIR: z.string().default(".data/postgres"),
  EMBEDDED_PG_PORT: int(54329, 1),
  MIGRATIONS_DIR: z.string().default("migrations"),
  REDIS_URL: z.url({ protocol: /^rediss?$/ }).optional(),
  REDIS_CONNECT_TIMEOUT_MS: int(1000, 1),
  REDIS_COMMAND_TIMEOUT_MS: int(250, 1),
  TIMELINE_CACHE_TTL_SECONDS: int(30, 0),
  /** With Redis: readers whose cached first pages each process also keeps in memory, kept coherent by Redis client-side caching (0: none). */
  TIMELINE_CACHE_LOCAL_ENTRIES: int(10_000, 0),
  JWT_SECRET: z.string().min(32, "must be at least 32 characters").optional(),
  JWT_TTL_SECONDS: int(3600, 60),
  ADMIN_USERNAME: z
    .string()
    .regex(/^[a-z0-9_]{3,30}$/)
    .default("admin"),
  ADMIN_EMAIL: z.email().default("admin@example.com"),
  ADMIN_PASSWORD: z.string().min(12, "must be at least 12 characters").optional(),
  SECRETS_FILE: z.string().default(".data/secrets.json"),
  ROLES: csv.pipe(z.array(z.enum(["api", "worker"])).min(1)).default(["api", "worker"]),
  MODULES: csv.optional(),
  CORS_ORIGINS: csv.default([]),
  TRUST_PROXY: bool.default(false),
  BODY_LIMIT_BYTES: int(1024 * 1024, 1),
  RATE_LIMIT_MAX: int(300, 1),
  RATE_LIMIT_WINDOW_SECONDS: int(60, 1),
  /** Requests per client address per window, signed in or not (both this and RATE_LIMIT_MAX apply). */
  RATE_LIMIT_IP_MAX: int(600, 1),
  /** With Redis: hits of callers far from their limits are counted in process and sent every this many ms (0: every hit at once). */
  RATE_LIMIT_SYNC_MS: int(50, 0),
  /** Sign-in attempts per target account, and per address, per SIGNIN_WINDOW_SECONDS (successes are given back). */
  SIGNIN_MAX_FAILURES: int(10, 1),
  SIGNIN_WINDOW_SECONDS: int(900, 1),
  /** How long a verified token's account (active, role, token version) is trusted before it is read again. */
  AUTH_ACCOUNT_CACHE_MS: int(5000, 0),
  IDEMPOTENCY_TTL_SECONDS: int(24 * 3600, 1),
  SHUTDOWN_TIMEOUT_MS: int(10_000, 0),
  WORKER_POLL_MS: int(1000, 10),
  WORKER_BATCH_SIZE: int(500, 1),
  /** Delivery transactions that append no events commit without waiting for the WAL flush (outbox/durability.ts). */
  WORKER_RELAXED_COMMIT: bool.default(true),
  ORDER_SNAPSHOT_EVERY: int(50, 0),
  /** How long the order saga waits for the payment's answer before treating it as failed (milliseconds once parsed). */
  PAYMENT_TIMEOUT: duration("30s"),
  TIMELINE_INACTIVE_DAYS: int(30, 1),
  CELEBRITY_FOLLOWER_THRESHOLD: int(10_000, 0),
  NOTIFICATIONS_HEARTBEAT_MS: int(15_000, 50),
  NOTIFICATIONS_MAX_STREAMS_PER_USER: int(5, 1),
  AWS_REGION: z.string().default("us-east-1"),
  AWS_ENDPOINT_URL: z.url().optional(),
  AWS_ENDPOINT_URL_EVENTBRIDGE: z.url().optional(),
  AWS_ENDPOINT_URL_KINESIS: z.url().optional(),
  AWS_ENDPOINT_URL_DYNAMODB: z.url().optional(),
  EVENTBRIDGE_BUS_NAME: z.string().min(1).optional(),
  EVENTBRIDGE_SOURCE_PREFIX: z.string().default("app."),
  KINESIS_STREAM_NAME: z.string().min(1).optional(),
  /** The key anonymous analytics ingestion sends in x-api-key; unset (the default): anonymous ingestion is off. */
  ANALYTICS_INGEST_KEY: z.string().min(16, "must be at least 16 characters").optional(),
  /** How long after a window's end the analytics aggregates still take events (later ones are counted as late). */
  ANALYTICS_ALLOWED_LATENESS: duration("2m"),
  /**
   * How long the sessions consumer and the feature refresh let a delivery that was not full gather
   * more events before reading again (0: none): their cost follows the users a delivery names,
   * not its events, so under load fewer, larger deliveries cost less; sessions and features then
   * trail ingestion by up to this much more. The windowed aggregates never wait.
   */
  ANALYTICS_SESSIONS_LINGER: duration("1s", { min: 0 }),
  /**
   * How long the feature refresh lets a delivery that was not full gather more ingested batches
   * (0: none). A refresh costs per user (a 30-day read and seven items each) and a steady stream
   * names the same users again and again, so each user's features are recomputed about once per
   * this wait, however many events they had: the store trails ingestion by up to this much more.
   */
  ANALYTICS_FEATURES_LINGER: duration("5s", { min: 0 }),
  /** Days of clickstream kept: older daily partitions are dropped (0: keep everything). */
  ANALYTICS_RETENTION_DAYS: int(0, 0),
  /** The Kinesis stream accepted clickstream records go to (partition key userId); unset: not sent. */
  ANALYTICS_KINESIS_STREAM: z.string().min(1).max(128).optional(),
  /** The DynamoDB table of the analytics feature store; unset: the features are kept in Postgres. */
  FEATURE_STORE_TABLE: z.string().min(3).max(255).optional(),
  METRICS_ENABLED: bool.default(true),
  /** When set, `/metrics` answers only `Authorization: Bearer <METRICS_TOKEN>`; required in production while metrics are on. */
  METRICS_TOKEN: z.string().min(16, "must be at least 16 characters").optional(),
});

/** Config is the validated, typed process configuration. */
export type Config = z.infer<typeof EnvSchema>;

/** ConfigError lists every offending environment variable in one message. */
export class ConfigError extends Error {
  constructor(readonly issues: { key: string; message: string }[]) {
    super(`Invalid configuration:\n${issues.map((i) => `  - ${i.key}: ${i.message}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

/**
 * loadConfig validates an environment (default `process.env`) and returns the typed config.
 * Empty strings count as unset so `FOO=` in a shell falls back to the default.
 *
 * @example const config = loadConfig({ PORT: "8080" });
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const cleaned: Record<string, string> = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== ""));
  const parsed = EnvSchema.safeParse(cleaned);
  const issues = parsed.success ? [] : parsed.error.issues.map((i) => ({ key: String(i.path[0] ?? "(env)"), message: i.message }));
  // Production rules are checked on the raw values too, so one error names every offender.
  if (cleaned.NODE_ENV === "production") {
    for (const key of SECRET_KEYS) {
      if (cleaned[key] === undefined) issues.push({ key, message: "is required in production (nothing is generated there)" });
    }
    if (cleaned.DATABASE_URL === undefined) issues.push({ key: "DATABASE_URL", message: "is required in production (no embedded database)" });
    if (cleaned.METRICS_TOKEN === undefined && !["false", "0", "no"].includes(cleaned.METRICS_ENABLED ?? ""))
      issues.push({ key: "METRICS_TOKEN", message: "is required in production while metrics are on (or set METRICS_ENABLED=false)" });
  }
  if (issues.length || !parsed.success) throw new ConfigError(issues);
  return parsed.data;
}
