/**
 * The aggregating consumer: a `handleBatch` subscription on `analytics.events_ingested`. Each
 * delivery reads the clickstream rows of its batches, applies them by event time to the windowed
 * aggregates, moves the watermark and counts late events, all in the delivery's transaction with
 * the subscription's checkpoint: a crash or a restart anywhere replays the whole delivery or none
 * of it, so every event is applied exactly once. Alerts go out through the outbox in the same
 * transaction.
 *
 * Why the outbox subscription and not a second consumer over the clickstream table: the outbox
 * already gives leases, the commit-order-safe checkpoint (transaction id, position), wake-ups
 * after commit, retries and dead letters; one small internal event per request adds one row per
 * up to 500 events, and the clickstream rows stay the data.
 */
import { randomUUIDv7 } from "bun";
import type postgres from "postgres";
import { type Appender, afterCommit, defineSubscription, type NewEvent } from "../../src/platform.ts";
import { AnalyticsEventsIngested, AnalyticsFraudRiskDetected, AnalyticsProductVelocityChanged } from "./events.ts";
import { countFeatures } from "./features/consumer-step.ts";
import { addToSession, type SessionState } from "./sessions.ts";
import {
  AGGREGATES,
  type Aggregate,
  isLate,
  RISK_RANK,
  riskLevel,
  SESSION_GAP_MS,
  VELOCITY_REPORT_UNITS,
  velocity,
  WINDOW_MS,
  windowStart,
} from "./windows.ts";

type Sql = postgres.Sql;

interface Row {
  user_id: string;
  session_id: string;
  event_type: string;
  product_id: string | null;
  category: string | null;
  price_cents: string | null;
  quantity: number | null;
  country: string | null;
  device_type: string | null;
  /** Event time in ms since the epoch (a bigint as text). */
  event_ms: string;
}

/** UNCATEGORIZED is the revenue category of a purchase with no category known. */
export const UNCATEGORIZED = "uncategorized";

/** ConsumerDeps are what the consumer needs. */
export interface ConsumerDeps {
  outbox: Appender;
  allowedLatenessMs: number;
  /** Told after each delivery how many late events each aggregate skipped (a metric). */
  onLate?: (aggregate: Aggregate, count: number) => void;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** aggregateClickstream is the subscription that keeps revenue, risk and velocity windows. */
export function aggregateClickstream(deps: ConsumerDeps) {
  return defineSubscription({
    name: "analytics.aggregate",
    on: [AnalyticsEventsIngested],
    // Each event names up to 500 rows: 50 of them bound a delivery (one transaction) to 25,000.
    batchSize: 50,
    handleBatch: async (events, { sql, tx }) => {
      const batchIds = events.map((e) => e.data.batchId);
      const rows = await sql<Row[]>`
        select c.user_id, c.session_id, c.event_type, c.product_id, c.category, c.price_cents, c.quantity, c.country, c.device_type,
               (extract(epoch from c.event_time) * 1000)::bigint as event_ms
        from analytics.clickstream c join unnest(${batchIds}::uuid[]) with ordinality as b(id, ord) on c.batch_id = b.id
        order by b.ord, c.batch_index`;
      const state = await sql<{ aggregate: Aggregate; watermark: string | null; late_events: string }[]>`
        select aggregate, to_char(watermark at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as watermark, late_events
        from analytics.consumer_state for update`;
      let watermark: number | null = state.reduce<number | null>((w, s) => (s.watermark === null ? w : Math.max(w ?? 0, Date.parse(s.watermark))), null);

      const late: Record<Aggregate, number> = { revenue: 0, risk: 0, velocity: 0, sessions: 0 };
      const keyed = await loadSessions(sql, rows);
      const touched = new Map<string, { userId: string; sessionId: string; session: SessionState }>();
      const mergedAway: string[] = [];
      const revenue = new Map<string, { ws: number; category: string; orders: number; cents: number; users: Set<string> }>();
      const risk = new Map<string, { ws: number; userId: string; count: number; cents: number; countries: Set<string> }>();
      const speed = new Map<string, { ws: number; productId: string; units: number; sales: number }>();
      for (const r of rows) {
        const t = Number(r.event_ms);
        const quantity = r.quantity ?? 1;
        const cents = r.event_type === "purchase" ? Number(r.price_cents ?? 0) * quantity : 0;
        const key = `${r.user_id}\u0000${r.session_id}`;
        const list = keyed.get(key) ?? [];
        keyed.set(key, list);
        const added = addToSession(list, { t, eventType: r.event_type, cents }, watermark, deps.allowedLatenessMs, randomUUIDv7);
        if (added.late) late.sessions++;
        else {
          touched.set(added.session.id, { userId: r.user_id, sessionId: r.session_id, session: added.session });
          for (const id of added.merged) {
            touched.delete(id);
            mergedAway.push(id);
          }
        }
        if (r.event_type === "purchase") {
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
            w.users.add(r.user_id);
            revenue.set(key, w);
          }
          if (!lateFor("risk")) {
            const ws = windowStart(t, WINDOW_MS.risk);
            const key = `${ws}/${r.user_id}`;
            const w = risk.get(key) ?? { ws, userId: r.user_id, count: 0, cents: 0, countries: new Set<string>() };
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
      const alerts: NewEvent[] = [];
      await applyRevenue(sql, [...revenue.values()]);
      alerts.push(...(await applyRisk(sql, [...risk.values()], cause)));
      alerts.push(...(await applyVelocity(sql, [...speed.values()], cause)));
      await applySessions(sql, [...touched.values()], mergedAway);
      alerts.push(...(await countFeatures(sql, rows, cause)));
      if (watermark !== null) {
        const aggregates = [...AGGREGATES];
        await sql`
          insert into analytics.consumer_state as s (aggregate, watermark, late_events)
          select a, ${iso(watermark)}::timestamptz, n from unnest(${aggregates}::text[], ${aggregates.map((a) => late[a])}::bigint[]) as u(a, n)
          on conflict (aggregate) do update set watermark = greatest(s.watermark, excluded.watermark), late_events = s.late_events + excluded.late_events`;
      }
      if (alerts.length) await deps.outbox.append(tx, alerts);
      // Counted once the delivery commits: a rolled-back one is delivered again and counts then.
      const onLate = deps.onLate;
      if (onLate)
        afterCommit(() => {
          for (const a of AGGREGATES) if (late[a]) onLate(a, late[a]);
        });
    },
  });
}

/**
 * loadSessions reads the sessions the batch's events could touch: those of the batch's (user,
 * sessionId) keys that end less than the gap before the batch's earliest event.
 */
async function loadSessions(sql: Sql, rows: Row[]): Promise<Map<string, SessionState[]>> {
  const keyed = new Map<string, SessionState[]>();
  if (rows.length === 0) return keyed;
  const keys = [...new Map(rows.map((r) => [`${r.user_id}\u0000${r.session_id}`, r])).values()];
  // A loop, not Math.min(...rows): a delivery may hold far more rows than a call takes arguments.
  let earliest = Number.POSITIVE_INFINITY;
  for (const r of rows) earliest = Math.min(earliest, Number(r.event_ms));
  const found = await sql<
    {
      id: string;
      user_id: string;
      session_id: string;
      start_ms: string;
      end_ms: string;
      event_count: number;
      page_views: number;
      cart_additions: number;
      purchases: number;
      revenue_cents: string;
    }[]
  >`
    select s.id, s.user_id, s.session_id, (extract(epoch from s.start_time) * 1000)::bigint as start_ms, (extract(epoch from s.end_time) * 1000)::bigint as end_ms,
           s.event_count, s.page_views, s.cart_additions, s.purchases, s.revenue_cents
    from analytics.sessions s join unnest(${keys.map((k) => k.user_id)}::text[], ${keys.map((k) => k.session_id)}::text[]) as k(u, sid)
      on s.user_id = k.u and s.session_id = k.sid
    where s.end_time > ${iso(earliest - SESSION_GAP_MS)}::timestamptz
    for update of s`;
  for (const f of found) {
    const key = `${f.user_id}\u0000${f.session_id}`;
    const list = keyed.get(key) ?? [];
    list.push({
      id: f.id,
      start: Number(f.start_ms),
      end: Number(f.end_ms),
      eventCount: f.event_count,
      pageViews: f.page_views,
      cartAdditions: f.cart_additions,
      purchases: f.purchases,
      revenueCents: Number(f.revenue_cents),
    });
    keyed.set(key, list);
  }
  return keyed;
}

async function applySessions(sql: Sql, touched: { userId: string; sessionId: string; session: SessionState }[], mergedAway: string[]): Promise<void> {
  if (mergedAway.length) await sql`delete from analytics.sessions where id = any(${mergedAway}::uuid[])`;
  if (touched.length === 0) return;
  const col = <T>(f: (x: (typeof touched)[number]) => T) => touched.map(f);
  await sql`
    insert into analytics.sessions as s (id, user_id, session_id, start_time, end_time, event_count, page_views, cart_additions, purchases, revenue_cents)
    select * from unnest(${col((x) => x.session.id)}::uuid[], ${col((x) => x.userId)}::text[], ${col((x) => x.sessionId)}::text[],
                         ${col((x) => iso(x.session.start))}::text[]::timestamptz[], ${col((x) => iso(x.session.end))}::text[]::timestamptz[],
                         ${col((x) => x.session.eventCount)}::int[], ${col((x) => x.session.pageViews)}::int[], ${col((x) => x.session.cartAdditions)}::int[],
                         ${col((x) => x.session.purchases)}::int[], ${col((x) => x.session.revenueCents)}::bigint[])
    on conflict (id) do update set start_time = excluded.start_time, end_time = excluded.end_time, event_count = excluded.event_count,
      page_views = excluded.page_views, cart_additions = excluded.cart_additions, purchases = excluded.purchases, revenue_cents = excluded.revenue_cents`;
}

async function applyRevenue(sql: Sql, windows: { ws: number; category: string; orders: number; cents: number; users: Set<string> }[]): Promise<void> {
  if (windows.length === 0) return;
  const customers = windows.flatMap((w) => [...w.users].map((u) => [iso(w.ws), w.category, u] as const));
  await sql`
    with fresh as (
      insert into analytics.revenue_customers (window_start, category, user_id)
      select ws::timestamptz, c, u from unnest(${customers.map((c) => c[0])}::text[], ${customers.map((c) => c[1])}::text[], ${customers.map((c) => c[2])}::text[]) as x(ws, c, u)
      on conflict do nothing
      returning window_start, category
    ),
    n as (select window_start, category, count(*)::int as n from fresh group by 1, 2)
    insert into analytics.revenue_windows as r (window_start, category, order_count, revenue_cents, unique_customers)
    select d.ws, d.c, d.o, d.cents, coalesce(n.n, 0)
    from unnest(${windows.map((w) => iso(w.ws))}::text[]::timestamptz[], ${windows.map((w) => w.category)}::text[],
                ${windows.map((w) => w.orders)}::int[], ${windows.map((w) => w.cents)}::bigint[]) as d(ws, c, o, cents)
    left join n on n.window_start = d.ws and n.category = d.c
    on conflict (window_start, category) do update set order_count = r.order_count + excluded.order_count,
      revenue_cents = r.revenue_cents + excluded.revenue_cents, unique_customers = r.unique_customers + excluded.unique_customers`;
}

type Cause = Parameters<typeof AnalyticsFraudRiskDetected.with>[1]["causedBy"];

async function applyRisk(
  sql: Sql,
  windows: { ws: number; userId: string; count: number; cents: number; countries: Set<string> }[],
  cause: Cause,
): Promise<NewEvent[]> {
  if (windows.length === 0) return [];
  const countries = windows.flatMap((w) => [...w.countries].map((c) => [w.userId, iso(w.ws), c] as const));
  const rows = await sql<{ user_id: string; window_start: string; purchase_count: number; total_cents: string; country_count: number; alerted_rank: number }[]>`
    with fresh as (
      insert into analytics.risk_countries (user_id, window_start, country)
      select u, ws::timestamptz, c from unnest(${countries.map((c) => c[0])}::text[], ${countries.map((c) => c[1])}::text[], ${countries.map((c) => c[2])}::text[]) as x(u, ws, c)
      on conflict do nothing
      returning user_id, window_start
    ),
    n as (select user_id, window_start, count(*)::int as n from fresh group by 1, 2)
    insert into analytics.risk_windows as r (user_id, window_start, purchase_count, total_cents, country_count, level)
    select d.u, d.ws, d.cnt, d.cents, coalesce(n.n, 0), 'LOW_RISK'
    from unnest(${windows.map((w) => w.userId)}::text[], ${windows.map((w) => iso(w.ws))}::text[]::timestamptz[],
                ${windows.map((w) => w.count)}::int[], ${windows.map((w) => w.cents)}::bigint[]) as d(u, ws, cnt, cents)
    left join n on n.user_id = d.u and n.window_start = d.ws
    on conflict (user_id, window_start) do update set purchase_count = r.purchase_count + excluded.purchase_count,
      total_cents = r.total_cents + excluded.total_cents, country_count = r.country_count + excluded.country_count
    returning user_id, to_char(window_start at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as window_start, purchase_count, total_cents, country_count, alerted_rank`;
  const alerts: NewEvent[] = [];
  const updates = rows.map((r) => {
    const total = Number(r.total_cents);
    const level = riskLevel(r.purchase_count, total, r.country_count);
    const rank = RISK_RANK[level];
    if (rank > r.alerted_rank && level !== "LOW_RISK") {
      alerts.push(
        AnalyticsFraudRiskDetected.with(
          {
            userId: r.user_id,
            windowStart: r.window_start,
            level,
            purchaseCount: r.purchase_count,
            totalCents: total,
            averageCents: r.purchase_count ? Math.round(total / r.purchase_count) : 0,
            countryCount: r.country_count,
          },
          { subject: r.user_id, causedBy: cause },
        ),
      );
    }
    return { userId: r.user_id, ws: r.window_start, level, rank: Math.max(rank, r.alerted_rank) };
  });
  await sql`
    update analytics.risk_windows r set level = u.level, alerted_rank = u.rank
    from unnest(${updates.map((u) => u.userId)}::text[], ${updates.map((u) => u.ws)}::text[]::timestamptz[], ${updates.map((u) => u.level)}::text[],
                ${updates.map((u) => u.rank)}::int[]) as u(user_id, ws, level, rank)
    where r.user_id = u.user_id and r.window_start = u.ws`;
  return alerts;
}

async function applyVelocity(sql: Sql, windows: { ws: number; productId: string; units: number; sales: number }[], cause: Cause): Promise<NewEvent[]> {
  if (windows.length === 0) return [];
  const rows = await sql<{ product_id: string; window_start: string; units: number; sale_count: number; reported: string | null }[]>`
    insert into analytics.velocity_windows as v (product_id, window_start, units, sale_count)
    select * from unnest(${windows.map((w) => w.productId)}::text[], ${windows.map((w) => iso(w.ws))}::text[]::timestamptz[],
                         ${windows.map((w) => w.units)}::int[], ${windows.map((w) => w.sales)}::int[])
    on conflict (product_id, window_start) do update set units = v.units + excluded.units, sale_count = v.sale_count + excluded.sale_count
    returning product_id, to_char(window_start at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as window_start, units, sale_count, reported`;
  const alerts: NewEvent[] = [];
  const changed: { productId: string; ws: string; velocity: string }[] = [];
  for (const r of rows) {
    if (r.units <= VELOCITY_REPORT_UNITS) continue;
    const v = velocity(r.units);
    if (v === r.reported) continue;
    changed.push({ productId: r.product_id, ws: r.window_start, velocity: v });
    alerts.push(
      AnalyticsProductVelocityChanged.with(
        { productId: r.product_id, windowStart: r.window_start, units: r.units, saleCount: r.sale_count, previous: (r.reported as never) ?? null, velocity: v },
        { subject: r.product_id, causedBy: cause },
      ),
    );
  }
  if (changed.length)
    await sql`
      update analytics.velocity_windows v set reported = u.velocity
      from unnest(${changed.map((c) => c.productId)}::text[], ${changed.map((c) => c.ws)}::text[]::timestamptz[], ${changed.map((c) => c.velocity)}::text[]) as u(p, ws, velocity)
      where v.product_id = u.p and v.window_start = u.ws`;
  return alerts;
}
