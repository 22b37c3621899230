import { hostname } from "node:os";
import type { OpenAPIHono } from "@hono/zod-openapi";
import { sql } from "drizzle-orm";
import type { Logger } from "pino";
import { connectDatabase, type Database } from "../src/db/client.ts";
import type { EventRegistry } from "../src/events/registry.ts";
import type { AppEnv } from "../src/http/env.ts";
import { listSubscriptions, type SubscriptionStatus } from "./admin.ts";
import { Membership } from "./membership.ts";
import type { CompiledPattern } from "./pattern.ts";
import { outboxRoutes } from "./routes/index.ts";
import { createEventBridgeClient, createEventBridgeSink, createKinesisClient, createKinesisSink } from "./sinks/index.ts";
import { createAppender } from "./store.ts";
import { compileFilter, InvalidSubscriptionError } from "./subscription.ts";
import { type Appender, noopMetrics, type OutboxMetrics, type SubscriptionDefinition } from "./types.ts";
import { Wakeup } from "./wakeup.ts";
import { bodyOf, type CompiledSubscription, PartitionWorker } from "./worker/index.ts";

export type { EnvelopeOf, NewEvent } from "../src/events/definition.ts";
export { currentEventContext, runWithEventContext } from "./context.ts";
export type { EventContext, EventEnvelope } from "./envelope.ts";
export { DeliveryDeferredError, StreamVersionConflictError, UnexpectedStreamEventError } from "./errors.ts";
export { defineSubscription, InvalidSubscriptionError } from "./subscription.ts";
export type {
  Appender,
  AppendToStreamOptions,
  BatchResult,
  EventHandlerSubscription,
  HandlerContext,
  OutboxMetrics,
  ProjectionSubscription,
  RelaySubscription,
  SubscriptionDefinition,
} from "./types.ts";

/** SinkConfig switches the AWS relays on; each is off unless its target is named. */
export interface SinkConfig {
  region: string;
  /** Emulator or VPC endpoints; unset means the SDK's default for the region. */
  eventBridgeEndpoint?: string | undefined;
  kinesisEndpoint?: string | undefined;
  eventBridgeBusName?: string | undefined;
  eventBridgeSourcePrefix: string;
  kinesisStreamName?: string | undefined;
}

/** OutboxOptions configure the event platform. */
export interface OutboxOptions {
  database: Database;
  registry: EventRegistry;
  log: Logger;
  metrics?: OutboxMetrics | undefined;
  pollMs?: number;
  batchSize?: number;
  /** How long an idle partition lease lasts without renewal (default 15). */
  leaseSeconds?: number;
  /**
   * How long after its last heartbeat a process is taken for dead and its partitions are taken
   * over (default 1500; it heartbeats four times in that time, on a connection of its own).
   */
  heartbeatTimeoutMs?: number;
  sinks?: SinkConfig;
  /**
   * Whether delivery transactions that append no events commit with `synchronous_commit = off`
   * (default true; see `durability.ts`): a Postgres crash may then undo the last few hundred
   * milliseconds of deliveries, which are delivered again.
   */
  relaxedDeliveryCommit?: boolean;
  /** Identifies this process in leases; unique per process. */
  processId?: string;
}

/** SinkInfo says whether a sink is on and where it sends. */
export interface SinkInfo {
  name: string;
  enabled: boolean;
  target: string | null;
  reason?: string;
}

/** Outbox is the event platform: the write side, the subscriptions and their workers. */
export interface Outbox {
  readonly appender: Appender;
  readonly registry: EventRegistry;
  readonly processId: string;
  readonly sinks: readonly SinkInfo[];
  /** subscribe registers subscriptions hosted by this process; `on` (against the registry) and patterns are checked here. */
  subscribe(defs: readonly SubscriptionDefinition[]): void;
  subscriptions(): readonly CompiledSubscription[];
  /**
   * declareElsewhere records subscriptions hosted by other processes (MODULES split), so the
   * catalog lists every subscriber; they are not run here.
   */
  declareElsewhere(defs: readonly SubscriptionDefinition[]): void;
  /** start creates missing checkpoints and starts one worker loop per hosted partition. */
  start(): Promise<void>;
  /** stop finishes in-flight batches and releases leases. */
  stop(): Promise<void>;
  /** wake nudges this process's workers (tests, after an out-of-band write). */
  wake(): void;
  status(): Promise<SubscriptionStatus[]>;
  routes(api: OpenAPIHono<AppEnv>): void;
}

const SUB_NAME = /^[a-z][a-z0-9-]*\.[a-z0-9][a-z0-9.-]*$/;

/**
 * createOutbox builds the event platform over a database.
 *
 * @example const outbox = createOutbox({ database, registry, log }); outbox.subscribe(mod.subscriptions); await outbox.start();
 */
export function createOutbox(opts: OutboxOptions): Outbox {
  const processId = opts.processId ?? `${hostname()}:${process.pid}:${crypto.randomUUID().slice(0, 8)}`;
  const metrics = opts.metrics ?? noopMetrics;
  const log = opts.log;
  const wakeup = new Wakeup(opts.database.sql, processId);
  const appender = createAppender(opts.registry, (events, xid) => wakeup.appended(events, xid));
  const compiled = new Map<string, CompiledSubscription>();
  const elsewhere = new Map<string, CompiledPattern>();
  const workers: PartitionWorker[] = [];
  const leaseSeconds = opts.leaseSeconds ?? 15;
  const heartbeatTimeoutMs = opts.heartbeatTimeoutMs ?? 1500;
  let membership: Membership | undefined;
  let heartbeatDb: Database | undefined;
  let started = false;

  function subscribe(defs: readonly SubscriptionDefinition[]) {
    for (const def of defs) {
      if (!SUB_NAME.test(def.name)) throw new InvalidSubscriptionError(def.name, "name must be <module>.<action>");
      if (compiled.has(def.name)) throw new InvalidSubscriptionError(def.name, "declared twice");
      const body = bodyOf(def);
      if (!body) throw new InvalidSubscriptionError(def.name, "give exactly one of handler, handleBatch or batchHandler");
      const partitions = def.partitions ?? 1;
      if (!Number.isInteger(partitions) || partitions < 1 || partitions > 256) throw new InvalidSubscriptionError(def.name, "partitions must be 1-256");
      const concurrency = (def as { concurrency?: number }).concurrency ?? 1;
      if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw new InvalidSubscriptionError(def.name, "concurrency must be 1-64");
      if (concurrency > 1 && body.kind !== "per-event") throw new InvalidSubscriptionError(def.name, "concurrency is for per-event handlers only");
      if (def.appends === false && body.kind === "relay")
        throw new InvalidSubscriptionError(def.name, "appends: false is for handlers and projections, not relays");
      // The type filter (pushed into SQL by the worker) comes from `on`, narrowed by the pattern.
      const matcher = compileFilter(def, opts.registry);
      compiled.set(def.name, {
        def,
        name: def.name,
        body,
        matcher,
        partitions,
        concurrency,
        maxAttempts: Math.max(1, def.maxAttempts ?? 5),
        batchSize: def.batchSize ?? opts.batchSize ?? 500,
        lingerMs: Math.max(0, def.lingerMs ?? 0),
        appends: def.appends ?? true,
        backoff: def.backoff ?? { baseMs: 100, maxMs: 30_000 },
      });
    }
  }

  const sinks: SinkInfo[] = [];
  const s = opts.sinks;
  if (s?.eventBridgeBusName) {
    subscribe([
      createEventBridgeSink({
        client: createEventBridgeClient(s.region, s.eventBridgeEndpoint),
        busName: s.eventBridgeBusName,
        sourcePrefix: s.eventBridgeSourcePrefix,
        metrics,
        log,
      }),
    ]);
    sinks.push({
      name: "outbox.eventbridge",
      enabled: true,
      target: `eventbridge:${s.eventBridgeBusName}${s.eventBridgeEndpoint ? ` via ${s.eventBridgeEndpoint}` : ""}`,
    });
  } else {
    sinks.push({ name: "outbox.eventbridge", enabled: false, target: null, reason: "EVENTBRIDGE_BUS_NAME is not set" });
  }
  if (s?.kinesisStreamName) {
    subscribe([createKinesisSink({ client: createKinesisClient(s.region, s.kinesisEndpoint), streamName: s.kinesisStreamName, metrics, log })]);
    sinks.push({ name: "outbox.kinesis", enabled: true, target: `kinesis:${s.kinesisStreamName}${s.kinesisEndpoint ? ` via ${s.kinesisEndpoint}` : ""}` });
  } else {
    sinks.push({ name: "outbox.kinesis", enabled: false, target: null, reason: "KINESIS_STREAM_NAME is not set" });
  }

  async function ensureCheckpoints(sub: CompiledSubscription) {
    const db = opts.database.db;
    const [existing] = (await db.execute(sql`select max(partitions)::int as partitions from outbox.subscriptions where name = ${sub.name}`)) as unknown as {
      partitions: number | null;
    }[];
    if (existing?.partitions && existing.partitions !== sub.partitions) {
      throw new InvalidSubscriptionError(
        sub.name,
        `has ${existing.partitions} partitions in the database but ${sub.partitions} in code; changing the count needs a new subscription name`,
      );
    }
    // "now" starts below the oldest transaction still running, so an append in flight is not
    // missed, and keeps the snapshot: the events it shows as already committed are skipped.
    await db.execute(sql`
      with snap as (select pg_current_snapshot() as s)
      insert into outbox.subscriptions (name, partition, partitions, last_transaction_id, last_position, start_snapshot)
      select ${sub.name}, p, ${sub.partitions},
             ${sub.def.startFrom === "now" ? sql`pg_snapshot_xmin(s)` : sql`'0'::xid8`}, 0,
             ${sub.def.startFrom === "now" ? sql`s::text` : sql`null`}
        from snap, generate_series(0, ${sub.partitions - 1}) p
      on conflict (name, partition) do nothing`);
  }

  return {
    appender,
    registry: opts.registry,
    processId,
    sinks,
    subscribe(defs) {
      if (started) throw new Error("subscribe before start()");
      subscribe(defs);
    },
    subscriptions: () => [...compiled.values()],
    declareElsewhere(defs) {
      for (const d of defs) if (!compiled.has(d.name)) elsewhere.set(d.name, compileFilter(d, opts.registry));
    },
    async start() {
      if (started) return;
      started = true;
      await wakeup.listen();
      for (const sub of compiled.values()) await ensureCheckpoints(sub);
      // Heartbeats get their own connection: queued behind busy pool connections, they could
      // come late enough for the others to take this live process for dead.
      if (compiled.size > 0) heartbeatDb = connectDatabase(opts.database.url, { max: 1, applicationName: "eventful-monolith heartbeat" });
      membership = new Membership((heartbeatDb ?? opts.database).db, processId, [...compiled.keys()], heartbeatTimeoutMs, log);
      await membership.start();
      for (const sub of compiled.values()) {
        for (let p = 0; p < sub.partitions; p++) {
          const w = new PartitionWorker(sub, p, {
            db: opts.database.db,
            wakeup,
            membership,
            log,
            metrics,
            processId,
            pollMs: opts.pollMs ?? 1000,
            leaseSeconds,
            relaxedCommit: opts.relaxedDeliveryCommit ?? true,
          });
          workers.push(w);
          w.start();
        }
      }
      log.info({ subscriptions: [...compiled.keys()], processId }, "outbox workers started");
    },
    async stop() {
      await Promise.all(workers.map((w) => w.stop()));
      workers.length = 0;
      await membership?.stop();
      membership = undefined;
      await heartbeatDb?.close();
      heartbeatDb = undefined;
      await wakeup.close();
    },
    wake: () => wakeup.wakeLocal(),
    status: () =>
      listSubscriptions(opts.database.db, new Map([...compiled.values()].map((c) => [c.name, { kind: c.def.kind ?? "handler", types: c.matcher.types }]))),
    routes(api) {
      const matchers = () => [...[...compiled.values()].map((c) => [c.name, c.matcher] as const), ...elsewhere.entries()];
      outboxRoutes(api, { db: opts.database.db, registry: opts.registry, outbox: this, subscriptionsByType: () => subscribersByType(matchers()) });
    },
  };
}

// A subscriber of a type is one whose type filter names it: the filter comes from `on` (narrowed
// by the pattern where it names types), or is every public type for a relay.
function subscribersByType(matchers: (readonly [string, CompiledPattern])[]): (type: string) => string[] {
  return (type) =>
    matchers
      .filter(([, m]) => m.types?.includes(type))
      .map(([name]) => name)
      .sort();
}
