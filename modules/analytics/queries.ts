/**
 * Reads of the windowed aggregates for the admin API: keyset pages in window order.
 */
import { type SQL, sql } from "drizzle-orm";
import type { Db } from "../../src/platform.ts";
import { type Aggregate, type RiskLevel, SESSION_GAP_MS, VELOCITY_REPORT_UNITS, type Velocity, velocity, WINDOW_MS } from "./windows.ts";

const ISO = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`;
const isoOf = (col: string) => sql.raw(`to_char(${col} at time zone 'UTC', ${ISO})`);
const end = (ws: string, ms: number) => new Date(Date.parse(ws) + ms).toISOString();

/** RevenueWindow is one category's purchases in one 5-minute window; money in cents. */
export interface RevenueWindow {
  windowStart: string;
  windowEnd: string;
  category: string;
  orderCount: number;
  revenueCents: number;
  averageOrderValueCents: number;
  uniqueCustomers: number;
}

/** RiskWindow is one user's purchases in one hour and the risk level they make. */
export interface RiskWindow {
  userId: string;
  windowStart: string;
  windowEnd: string;
  purchaseCount: number;
  totalCents: number;
  averageCents: number;
  countryCount: number;
  level: RiskLevel;
}

/** VelocityWindow is one product's sales in one hour (only product-hours over 10 units). */
export interface VelocityWindow {
  productId: string;
  windowStart: string;
  windowEnd: string;
  units: number;
  saleCount: number;
  velocity: Velocity;
}

const and = (parts: (SQL | undefined)[]) => {
  const kept = parts.filter((p): p is SQL => p !== undefined);
  return kept.length ? sql`where ${sql.join(kept, sql` and `)}` : sql``;
};

/** listRevenue pages revenue windows starting in [from, to), optionally of one category, by (window, category). */
export async function listRevenue(
  db: Db,
  q: { from?: string; to?: string; category?: string; after?: [string, string]; limit: number },
): Promise<RevenueWindow[]> {
  const rows = await db.execute<{ ws: string; category: string; order_count: number; revenue_cents: string; unique_customers: number }>(sql`
    select ${isoOf("window_start")} as ws, category, order_count, revenue_cents, unique_customers from analytics.revenue_windows
    ${and([
      q.from ? sql`window_start >= ${q.from}::timestamptz` : undefined,
      q.to ? sql`window_start < ${q.to}::timestamptz` : undefined,
      q.category ? sql`category = ${q.category}` : undefined,
      q.after ? sql`(window_start, category) > (${q.after[0]}::timestamptz, ${q.after[1]})` : undefined,
    ])}
    order by window_start, category limit ${q.limit}`);
  return rows.map((r) => {
    const revenueCents = Number(r.revenue_cents);
    return {
      windowStart: r.ws,
      windowEnd: end(r.ws, WINDOW_MS.revenue),
      category: r.category,
      orderCount: r.order_count,
      revenueCents,
      averageOrderValueCents: r.order_count ? Math.round(revenueCents / r.order_count) : 0,
      uniqueCustomers: r.unique_customers,
    };
  });
}

/** listRisk pages user-hours by (window, user), optionally only those at `level`. */
export async function listRisk(db: Db, q: { level?: RiskLevel; after?: [string, string]; limit: number }): Promise<RiskWindow[]> {
  const rows = await db.execute<{ user_id: string; ws: string; purchase_count: number; total_cents: string; country_count: number; level: RiskLevel }>(sql`
    select user_id, ${isoOf("window_start")} as ws, purchase_count, total_cents, country_count, level from analytics.risk_windows
    ${and([q.level ? sql`level = ${q.level}` : undefined, q.after ? sql`(window_start, user_id) > (${q.after[0]}::timestamptz, ${q.after[1]})` : undefined])}
    order by window_start, user_id limit ${q.limit}`);
  return rows.map((r) => {
    const totalCents = Number(r.total_cents);
    return {
      userId: r.user_id,
      windowStart: r.ws,
      windowEnd: end(r.ws, WINDOW_MS.risk),
      purchaseCount: r.purchase_count,
      totalCents,
      averageCents: r.purchase_count ? Math.round(totalCents / r.purchase_count) : 0,
      countryCount: r.country_count,
      level: r.level,
    };
  });
}

/** listVelocity pages the reported product-hours (over 10 units) starting in [from, to), by (window, product). */
export async function listVelocity(db: Db, q: { from?: string; to?: string; after?: [string, string]; limit: number }): Promise<VelocityWindow[]> {
  const rows = await db.execute<{ product_id: string; ws: string; units: number; sale_count: number }>(sql`
    select product_id, ${isoOf("window_start")} as ws, units, sale_count from analytics.velocity_windows
    ${and([
      sql`units > ${VELOCITY_REPORT_UNITS}`,
      q.from ? sql`window_start >= ${q.from}::timestamptz` : undefined,
      q.to ? sql`window_start < ${q.to}::timestamptz` : undefined,
      q.after ? sql`(window_start, product_id) > (${q.after[0]}::timestamptz, ${q.after[1]})` : undefined,
    ])}
    order by window_start, product_id limit ${q.limit}`);
  return rows.map((r) => ({
    productId: r.product_id,
    windowStart: r.ws,
    windowEnd: end(r.ws, WINDOW_MS.velocity),
    units: r.units,
    saleCount: r.sale_count,
    velocity: velocity(r.units),
  }));
}

/** Session is one session window of a user's sessionId; closed once the watermark is 30 minutes (plus the lateness) past its last event. */
export interface Session {
  userId: string;
  sessionId: string;
  start: string;
  end: string;
  eventCount: number;
  pageViews: number;
  cartAdditions: number;
  purchases: number;
  revenueCents: number;
  closed: boolean;
}

/** listSessions pages sessions by (start, user, sessionId), optionally of one user. */
export async function listSessions(
  db: Db,
  q: { userId?: string; after?: [string, string, string]; limit: number; watermark: string | null; allowedLatenessMs: number },
): Promise<Session[]> {
  const rows = await db.execute<{
    user_id: string;
    session_id: string;
    st: string;
    en: string;
    event_count: number;
    page_views: number;
    cart_additions: number;
    purchases: number;
    revenue_cents: string;
  }>(sql`
    select user_id, session_id, ${isoOf("start_time")} as st, ${isoOf("end_time")} as en, event_count, page_views, cart_additions, purchases, revenue_cents
    from analytics.sessions
    ${and([
      q.userId ? sql`user_id = ${q.userId}` : undefined,
      q.after ? sql`(start_time, user_id, session_id) > (${q.after[0]}::timestamptz, ${q.after[1]}, ${q.after[2]})` : undefined,
    ])}
    order by start_time, user_id, session_id limit ${q.limit}`);
  const wm = q.watermark === null ? null : Date.parse(q.watermark);
  return rows.map((r) => ({
    userId: r.user_id,
    sessionId: r.session_id,
    start: r.st,
    end: r.en,
    eventCount: r.event_count,
    pageViews: r.page_views,
    cartAdditions: r.cart_additions,
    purchases: r.purchases,
    revenueCents: Number(r.revenue_cents),
    closed: wm !== null && Date.parse(r.en) + SESSION_GAP_MS + q.allowedLatenessMs <= wm,
  }));
}

/** ConsumerStatus is the aggregating consumer's watermark and late-event counts. */
export interface ConsumerStatus {
  watermark: string | null;
  allowedLatenessMs: number;
  lateEvents: Record<Aggregate, number>;
}

/** consumerStatus reads the watermark and the late events counted per aggregate. */
export async function consumerStatus(db: Db, allowedLatenessMs: number): Promise<ConsumerStatus> {
  const rows = await db.execute<{ aggregate: Aggregate; wm: string | null; late_events: string }>(
    sql`select aggregate, ${isoOf("watermark")} as wm, late_events from analytics.consumer_state`,
  );
  const lateEvents: Record<Aggregate, number> = { revenue: 0, risk: 0, velocity: 0, sessions: 0 };
  let watermark: string | null = null;
  for (const r of rows) {
    lateEvents[r.aggregate] = Number(r.late_events);
    if (r.wm && (watermark === null || r.wm > watermark)) watermark = r.wm;
  }
  return { watermark, allowedLatenessMs, lateEvents };
}
