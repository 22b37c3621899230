/**
 * The windowed aggregates' writes for the windows consumer (see consumer.ts): revenue, fraud risk
 * and product velocity, each one statement per delivery, with their alerts.
 */
import type postgres from "postgres";
import type { NewEvent } from "../../src/platform.ts";
import { AnalyticsFraudRiskDetected, AnalyticsProductVelocityChanged } from "./events.ts";
import { RISK_RANK, type RiskLevel, riskLevel, VELOCITY_REPORT_UNITS, velocity } from "./windows.ts";

type Sql = postgres.Sql;

const iso = (ms: number) => new Date(ms).toISOString();

/** applyRevenue adds a delivery's purchases to their revenue windows, counting each customer once per window. */
export async function applyRevenue(sql: Sql, windows: { ws: number; category: string; orders: number; cents: number; users: Set<string> }[]): Promise<void> {
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

/** Cause is the event an alert is caused by (the delivery's last). */
export type Cause = Parameters<typeof AnalyticsFraudRiskDetected.with>[1]["causedBy"];

/** applyRisk adds purchases to their user-hours and returns the alerts for the levels first reached. */
export async function applyRisk(
  sql: Sql,
  windows: { ws: number; userId: string; count: number; cents: number; countries: Set<string> }[],
  cause: Cause,
): Promise<NewEvent[]> {
  if (windows.length === 0) return [];
  const countries = windows.flatMap((w) => [...w.countries].map((c) => [w.userId, iso(w.ws), c] as const));
  const rows = await sql<
    { user_id: string; window_start: string; purchase_count: number; total_cents: string; country_count: number; level: RiskLevel; alerted_rank: number }[]
  >`
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
    returning user_id, to_char(window_start at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as window_start, purchase_count, total_cents, country_count, level, alerted_rank`;
  const alerts: NewEvent[] = [];
  const updates: { userId: string; ws: string; level: RiskLevel; rank: number }[] = [];
  for (const r of rows) {
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
    // Most user-hours keep their level: only those whose level or alerted rank moved are written again.
    if (level !== r.level || rank > r.alerted_rank) updates.push({ userId: r.user_id, ws: r.window_start, level, rank: Math.max(rank, r.alerted_rank) });
  }
  if (updates.length === 0) return alerts;
  await sql`
    update analytics.risk_windows r set level = u.level, alerted_rank = u.rank
    from unnest(${updates.map((u) => u.userId)}::text[], ${updates.map((u) => u.ws)}::text[]::timestamptz[], ${updates.map((u) => u.level)}::text[],
                ${updates.map((u) => u.rank)}::int[]) as u(user_id, ws, level, rank)
    where r.user_id = u.user_id and r.window_start = u.ws`;
  return alerts;
}

/** applyVelocity adds units to their product-hours and returns the alerts for the categories that changed. */
export async function applyVelocity(sql: Sql, windows: { ws: number; productId: string; units: number; sales: number }[], cause: Cause): Promise<NewEvent[]> {
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
