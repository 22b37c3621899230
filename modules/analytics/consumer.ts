/**
 * The aggregating consumers: two `handleBatch` subscriptions on `analytics.events_ingested`, each
 * with its own checkpoint, reading the clickstream rows of the batches it is given:
 *
 * - `analytics.aggregate` keeps the windowed aggregates (revenue, fraud risk, product velocity)
 *   and sends their alerts;
 * - `analytics.sessions` keeps the sessions, and adds every event to the feature store's per-user,
 *   per-day counters (`features/consumer-step.ts`; the store itself is written by
 *   `analytics.features` from the committed counters).
 *
 * Each applies its rows by event time, moves its aggregates' watermark and counts their late
 * events, all in the delivery's transaction with its checkpoint: a crash or a restart anywhere
 * replays the whole delivery or none of it, so every event is applied exactly once by each.
 * They are two because sessions cost most (every event touches one, a delivery thousands): apart,
 * the windows (what the revenue, risk and velocity reads and the alerts show) are not held back
 * by them, and the two run side by side. Both see every event in the same order, so their
 * watermarks, hence what is late, are those one consumer would have.
 *
 * Why the outbox subscription and not a second consumer over the clickstream table: the outbox
 * already gives leases, the commit-order-safe checkpoint (transaction id, position), wake-ups
 * after commit, retries and dead letters; one small internal event per request adds one row per
 * up to 500 events, and the clickstream rows stay the data.
 */
import { randomUUIDv7 } from "bun";
import type postgres from "postgres";
import { type Appender, afterCommit, defineSubscription, type EventEnvelope, type HandlerContext, type NewEvent, writeBehind } from "../../src/platform.ts";
import { AnalyticsEventsIngested } from "./events.ts";
import { countFeatures } from "./features/consumer-step.ts";
import { addToSession, type SessionState } from "./sessions.ts";
import { applySessions, loadSessions } from "./sessions-store.ts";
import { type Aggregate, isLate, WINDOW_MS, windowStart } from "./windows.ts";
import { applyRevenue, applyRisk, applyVelocity } from "./windows-store.ts";

type Sql = postgres.Sql;
/** Ingested is an `analytics.events_ingested` as the consumers are given it. */
export type Ingested = EventEnvelope<{ batchId: string; count: number; receivedAt?: string | undefined }>;

/** UNCATEGORIZED is the revenue category of a purchase with no category known. */
export const UNCATEGORIZED = "uncategorized";

/** DEFAULT_SESSIONS_LINGER_MS is how long the sessions consumer lets a delivery that was not full gather more (1 s). */
export const DEFAULT_SESSIONS_LINGER_MS = 1000;

/** ConsumerDeps are what the consumers need. */
export interface ConsumerDeps {
  outbox: Appender;
  allowedLatenessMs: number;
  /** The sessions consumer's wait after a delivery that was not full (default DEFAULT_SESSIONS_LINGER_MS). */
  sessionsLingerMs?: number;
  /** Told after each delivery how many late events each aggregate skipped (a metric). */
  onLate?: (aggregate: Aggregate, count: number) => void;
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * readRows reads the rows of a delivery's batches, in send order. Each batch's rows are read by
 * the batch id's index in the one partition its receive time names (run-time pruning); the
 * lateral subquery stays a per-batch index lookup (`offset 0` keeps the planner from turning it
 * into a scan of the whole day's partition), so a read costs the same however full the day is.
 * Batches announced before receivedAt existed are looked up in every partition.
 */
function readRows<R extends postgres.MaybeRow>(sql: Sql, events: readonly Ingested[], columns: postgres.PendingQuery<postgres.Row[]>) {
  return sql<R[]>`
    select ${columns}, (date_part('epoch', c.event_time) * 1000)::bigint as event_ms
    ${fromBatches(sql, events)}
    order by b.ord, c.batch_index`;
}

/** fromBatches is readRows' source: the rows of the delivery's batches (`b.ord` their order, `c` the row). */
export function fromBatches(sql: Sql, events: readonly Ingested[]) {
  const received = events.map((e) => e.data.receivedAt ?? null);
  return sql`
    from unnest(${events.map((e) => e.data.batchId)}::uuid[], ${received}::text[]::timestamptz[]) with ordinality as b(id, received_at, ord)
    cross join lateral (
      select * from analytics.clickstream c
      where c.batch_id = b.id ${received.includes(null) ? sql`` : sql`and c.received_at = b.received_at`}
      offset 0
    ) c`;
}

/**
 * readPurchases reads, in send order, only what the windows need of a delivery's rows: each
 * purchase with the highest event time of the rows before it (`before_ms`, null for the first),
 * and the last row (purchase or not) likewise, so the watermark ends where one row at a time would
 * have taken it. A purchase is a fifth of a typical stream: the other rows stay in Postgres.
 */
function readPurchases(sql: Sql, events: readonly Ingested[]) {
  return sql<WindowRow[]>`
    select event_type, user_id, product_id, category, price_cents, quantity, country, event_ms, before_ms
    from (
      select c.event_type, c.user_id, c.product_id, c.category, c.price_cents, c.quantity, c.country, t.event_ms, b.ord, c.batch_index,
        max(t.event_ms) over (w rows between unbounded preceding and 1 preceding) as before_ms,
        lead(1) over w is null as last
      ${fromBatches(sql, events)}
      cross join lateral (select (date_part('epoch', c.event_time) * 1000)::bigint as event_ms) t
      window w as (order by b.ord, c.batch_index)
    ) r
    where event_type = 'purchase' or last
    order by ord, batch_index`;
}

/**
 * freshBatches leaves out of a delivery the batches `consumer` has already applied: delivered
 * again after an admin replay moved the checkpoint back, they would be counted twice. (A redelivery
 * after a failure needs no such check: the delivery's transaction rolled back whole.)
 */
async function freshBatches(sql: Sql, consumer: string, events: readonly Ingested[]): Promise<Ingested[]> {
  const applied = await sql<{ id: string }[]>`
    select batch_id::text as id from analytics.consumer_batches
    where consumer = ${consumer} and batch_id = any(${events.map((e) => e.data.batchId)}::uuid[])`;
  if (applied.length === 0) return [...events];
  const done = new Set(applied.map((r) => r.id));
  return events.filter((e) => !done.has(e.data.batchId));
}

/**
 * markApplied records the delivery's batches as applied by `consumer`, in its transaction. A
 * plain insert: if another delivery applied one of them meanwhile (a process that lost its lease
 * in the middle of a delivery), the key refuses it and this delivery rolls back whole.
 */
async function markApplied(sql: Sql, consumer: string, events: readonly Ingested[]): Promise<void> {
  await sql`
    insert into analytics.consumer_batches (consumer, batch_id, received_at)
    select ${consumer}, id, received_at
    from unnest(${events.map((e) => e.data.batchId)}::uuid[], ${events.map((e) => e.data.receivedAt ?? null)}::text[]::timestamptz[]) as b(id, received_at)`;
}

/*
 * PIPELINED: a delivery reads first (no row locks, so its transaction has no transaction id yet),
 * then sends its writes together, without waiting for one before sending the next (they run in
 * order on the delivery's connection), and records its batches write-behind (checked at commit).
 * From its first write the transaction holds a transaction id, and with it every reader's horizon:
 * the other consumer's wake-ups (the windows, which the revenue, risk and velocity reads wait for)
 * wait for it to end. Sent together, that lasts about as long as Postgres takes to run the writes,
 * not a round trip through a busy process after each.
 */

/**
 * onceEach makes a consumer's batch handler apply each batch once whatever the checkpoint does:
 * it is given only the delivery's batches the consumer has not applied (none: it is not called),
 * and those are recorded as applied in the delivery's transaction.
 */
function onceEach(handle: (events: Ingested[], ctx: HandlerContext) => Promise<void>) {
  return async (delivered: Ingested[], ctx: HandlerContext): Promise<void> => {
    const events = await freshBatches(ctx.sql, ctx.subscription, delivered);
    if (events.length === 0) return;
    await handle(events, ctx);
    await writeBehind(ctx.tx, markApplied(ctx.sql, ctx.subscription, events));
  };
}

/**
 * readState reads the watermark of `aggregates`: the highest event time applied to them.
 *
 * Neither it nor the sessions' read locks a row. Each consumer is one partition, and its delivery
 * commits only through the outbox's fenced checkpoint advance (`outbox/worker/checkpoint.ts`): a
 * delivery running beside it (a process that lost its lease) rolls back whole, and the batches'
 * key in `consumer_batches` refuses the later of two. Reading without row locks keeps the
 * delivery's transaction without a transaction id until its writes, so it does not hold the
 * server's read horizon (every subscription's wake-up) back while it reads and computes.
 */
async function readState(sql: Sql, aggregates: readonly Aggregate[]): Promise<number | null> {
  const state = await sql<{ watermark: string | null }[]>`
    select to_char(watermark at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as watermark
    from analytics.consumer_state where aggregate = any(${aggregates as Aggregate[]}::text[])`;
  return state.reduce<number | null>((w, s) => (s.watermark === null ? w : Math.max(w ?? 0, Date.parse(s.watermark))), null);
}

/** saveState moves the watermark of `aggregates` and adds their late events; the metric is told once the delivery commits. */
async function saveState(sql: Sql, deps: ConsumerDeps, late: Partial<Record<Aggregate, number>>, watermark: number | null): Promise<void> {
  const aggregates = Object.keys(late) as Aggregate[];
  if (watermark !== null)
    await sql`
      insert into analytics.consumer_state as s (aggregate, watermark, late_events)
      select a, ${iso(watermark)}::timestamptz, n from unnest(${aggregates}::text[], ${aggregates.map((a) => late[a] ?? 0)}::bigint[]) as u(a, n)
      on conflict (aggregate) do update set watermark = greatest(s.watermark, excluded.watermark), late_events = s.late_events + excluded.late_events`;
  // Counted once the delivery commits: a rolled-back one is delivered again and counts then.
  const onLate = deps.onLate;
  if (onLate)
    afterCommit(() => {
      for (const a of aggregates) if (late[a]) onLate(a, late[a]);
    });
}

interface WindowRow {
  event_type: string;
  user_id: string | null;
  product_id: string | null;
  category: string | null;
  price_cents: string | null;
  quantity: number | null;
  country: string | null;
  /** Event time in ms since the epoch (a bigint as text). */
  event_ms: string;
  /** The highest event time of the delivery's rows before this one (null for the first). */
  before_ms: string | null;
}

/** windowsConsumer is the subscription that keeps revenue, risk and velocity windows and sends their alerts. */
function windowsConsumer(deps: ConsumerDeps) {
  return defineSubscription({
    name: "analytics.aggregate",
    on: [AnalyticsEventsIngested],
    // Each event names up to 500 rows: 50 of them bound a delivery (one transaction) to 25,000.
    batchSize: 50,
    handleBatch: onceEach(async (events, { sql, tx }) => {
      // Every event moves the watermark; only purchases count, so only they are read (with the
      // highest event time before each).
      const rows = await readPurchases(sql, events);
      const initial = await readState(sql, ["revenue", "risk", "velocity"]);
      let watermark = initial;
      const late = { revenue: 0, risk: 0, velocity: 0 };
      const revenue = new Map<string, { ws: number; category: string; orders: number; cents: number; users: Set<string> }>();
      const risk = new Map<string, { ws: number; userId: string; count: number; cents: number; countries: Set<string> }>();
      const speed = new Map<string, { ws: number; productId: string; units: number; sales: number }>();
      for (const r of rows) {
        const t = Number(r.event_ms);
        // The watermark as it stood before this row: the rows not read moved it too.
        const before = r.before_ms === null ? null : Number(r.before_ms);
        watermark = before === null ? initial : initial === null ? before : Math.max(initial, before);
        if (r.event_type === "purchase") {
          const userId = r.user_id!;
          const quantity = r.quantity ?? 1;
          const cents = Number(r.price_cents ?? 0) * quantity;
          const lateFor = (a: keyof typeof WINDOW_MS) => {
            const l = isLate(t, WINDOW_MS[a], watermark, deps.allowedLatenessMs);
            if (l) late[a]++;
            return l;
          };
          if (!lateFor("revenue")) {
            const ws = windowStart(t, WINDOW_MS.revenue);
            const category = r.category ?? UNCATEGORIZED;
            const key = `${ws}/${category}`;
            const w = revenue.get(key) ?? { ws, category, orders: 0, cents: 0, users: new Set<string>() };
            w.orders++;
            w.cents += cents;
            w.users.add(userId);
            revenue.set(key, w);
          }
          if (!lateFor("risk")) {
            const ws = windowStart(t, WINDOW_MS.risk);
            const key = `${ws}/${userId}`;
            const w = risk.get(key) ?? { ws, userId, count: 0, cents: 0, countries: new Set<string>() };
            w.count++;
            w.cents += cents;
            if (r.country) w.countries.add(r.country);
            risk.set(key, w);
          }
          if (r.product_id && !lateFor("velocity")) {
            const ws = windowStart(t, WINDOW_MS.velocity);
            const key = `${ws}/${r.product_id}`;
            const w = speed.get(key) ?? { ws, productId: r.product_id, units: 0, sales: 0 };
            w.units += quantity;
            w.sales++;
            speed.set(key, w);
          }
        }
        watermark = watermark === null ? t : Math.max(watermark, t);
      }
      const cause = events[events.length - 1]!;
      // The writes go out together (see PIPELINED); the alerts, decided by what the risk and
      // velocity upserts return, follow them.
      const [, risky, fast] = await Promise.all([
        applyRevenue(sql, [...revenue.values()]),
        applyRisk(sql, [...risk.values()], cause),
        applyVelocity(sql, [...speed.values()], cause),
        saveState(sql, deps, late, watermark),
      ]);
      const alerts: NewEvent[] = [...risky, ...fast];
      if (alerts.length) await deps.outbox.append(tx, alerts);
    }),
  });
}

interface SessionRow {
  user_id: string;
  session_id: string;
  event_type: string;
  price_cents: string | null;
  quantity: number | null;
  /** These two are for the feature counters. */
  category: string | null;
  device_type: string | null;
  event_ms: string;
}

/** sessionsConsumer is the subscription that keeps the sessions. */
function sessionsConsumer(deps: ConsumerDeps) {
  return defineSubscription({
    name: "analytics.sessions",
    on: [AnalyticsEventsIngested],
    // It appends nothing (the feature subscription learns of its work from `consumer_batches`):
    // declared so, its long deliveries do not hold the windows consumer's reads back.
    appends: false,
    batchSize: 50,
    // Its cost follows the users a delivery names (a session and a counter row each, then their
    // features' refresh), not the events: under a steady stream, a delivery that was not full
    // waits to gather more, so each user is written once for more of its events. The windows
    // consumer, which the revenue, risk and velocity reads wait for, does not wait.
    lingerMs: deps.sessionsLingerMs ?? DEFAULT_SESSIONS_LINGER_MS,
    handleBatch: onceEach(async (events, { sql }) => {
      const rows = await readRows<SessionRow>(sql, events, sql`c.user_id, c.session_id, c.event_type, c.price_cents, c.quantity, c.category, c.device_type`);
      let watermark = await readState(sql, ["sessions"]);
      const late = { sessions: 0 };
      const keyed = await loadSessions(sql, rows);
      const touched = new Map<string, { userId: string; sessionId: string; session: SessionState }>();
      const mergedAway: string[] = [];
      // The sessions this delivery makes: inserted, where the ones read are updated.
      const created = new Set<string>();
      const newId = () => {
        const id = randomUUIDv7();
        created.add(id);
        return id;
      };
      for (const r of rows) {
        const t = Number(r.event_ms);
        const cents = r.event_type === "purchase" ? Number(r.price_cents ?? 0) * (r.quantity ?? 1) : 0;
        // loadSessions gave every key of the rows its list.
        const list = keyed.get(r.user_id)!.get(r.session_id)!;
        const added = addToSession(list, { t, eventType: r.event_type, cents }, watermark, deps.allowedLatenessMs, newId);
        if (added.late) late.sessions++;
        else {
          // Noted once per session (a delivery brings several events to most), not per event.
          if (!touched.has(added.session.id)) touched.set(added.session.id, { userId: r.user_id, sessionId: r.session_id, session: added.session });
          for (const id of added.merged) {
            touched.delete(id);
            mergedAway.push(id);
          }
        }
        watermark = watermark === null ? t : Math.max(watermark, t);
      }
      // Every event counts toward the features, late or not: they span 30 days, not a window.
      // The writes go out together (see PIPELINED).
      await Promise.all([applySessions(sql, [...touched.values()], mergedAway, created), countFeatures(sql, rows), saveState(sql, deps, late, watermark)]);
    }),
  });
}

/**
 * aggregateClickstream gives the two consumers: the windowed aggregates with their alerts, and
 * the sessions.
 */
export function aggregateClickstream(deps: ConsumerDeps) {
  return [windowsConsumer(deps), sessionsConsumer(deps)] as const;
}
