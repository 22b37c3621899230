/**
 * The exact per-user, per-day counters behind the features, and the features computed from them.
 * The consumer adds a delivery's events to the counters in its transaction (`countEvents`, then
 * `addCounters`); the feature subscription sums a user's last 30 days and computes absolute
 * feature values (`computeFeatures`), so a feature item written twice or late is still right.
 */
import type postgres from "postgres";
import { deviceCategory } from "../enrich.ts";
import { FEATURE_WINDOW_DAYS, type FeatureValues } from "./types.ts";

type Sql = postgres.Sql;

/** CountedRow is what counting needs of a clickstream row (the consumer's row has these). */
export interface CountedRow {
  user_id: string;
  event_type: string;
  category: string | null;
  price_cents: string | number | null;
  quantity: number | null;
  device_type: string | null;
  /** Event time in ms since the epoch. */
  event_ms: string | number;
}

const DAY_MS = 86_400_000;

/** dayOf is the UTC date (YYYY-MM-DD) of an epoch-ms time. */
export const dayOf = (ms: number): string => new Date(Math.floor(ms / DAY_MS) * DAY_MS).toISOString().slice(0, 10);

/** windowFirstDay is the first UTC day of the 30-day feature window ending on the day of `now`. */
export const windowFirstDay = (now: Date): string => dayOf(now.getTime() - (FEATURE_WINDOW_DAYS - 1) * DAY_MS);

const VIEW = "category.view:";
const CART = "category.cart:";
const PURCHASE = "category.purchase:";
const CATEGORY_COUNTER: Record<string, string> = { page_view: VIEW, add_to_cart: CART, purchase: PURCHASE };

/** Counted is a delivery's counters per user-day: `counts` maps counter names to their (non-zero) sums. */
export type Counted = Map<string, { userId: string; day: string; counts: Record<string, number> }>;

const HOUR_MS = 3_600_000;

/** HOUR_COUNTERS are the hour counters' names, by UTC hour: made once, not per event. */
const HOUR_COUNTERS = Array.from({ length: 24 }, (_, h) => `hour:${h}`);

/** bump adds `n` to a counter, keeping only non-zero ones. */
function bump(counts: Record<string, number>, counter: string, n: number): void {
  if (n !== 0) counts[counter] = (counts[counter] ?? 0) + n;
}

/**
 * countEvents adds up rows into counters per user and day; only non-zero counters are kept.
 *
 * It runs for every event a delivery reads, so what does not depend on the single event is made
 * once: a day's date text once per delivery (a Date and its ISO text per event cost more than the
 * rest of the counting), the hour from the epoch milliseconds by arithmetic (what getUTCHours
 * gives), and each device type's counter name once.
 */
export function countEvents(rows: readonly CountedRow[]): Counted {
  const out: Counted = new Map();
  const days = new Map<number, string>();
  const devices = new Map<string, string>();
  for (const r of rows) {
    const ms = Number(r.event_ms);
    const dayNumber = Math.floor(ms / DAY_MS);
    let day = days.get(dayNumber);
    if (day === undefined) days.set(dayNumber, (day = dayOf(ms)));
    const key = `${r.user_id}\u0000${day}`;
    let entry = out.get(key);
    if (!entry) out.set(key, (entry = { userId: r.user_id, day, counts: {} }));
    const counts = entry.counts;
    const price = r.price_cents === null ? null : Number(r.price_cents);
    const quantity = r.quantity ?? 1;
    bump(counts, "events", 1);
    // ms - dayNumber * DAY_MS is the time of day (0 up to a day, before 1970 too).
    bump(counts, HOUR_COUNTERS[Math.floor((ms - dayNumber * DAY_MS) / HOUR_MS)]!, 1);
    if (r.device_type) {
      let device = devices.get(r.device_type);
      if (device === undefined) devices.set(r.device_type, (device = `device:${deviceCategory(r.device_type)}`));
      bump(counts, device, 1);
    }
    const categoryCounter = CATEGORY_COUNTER[r.event_type];
    if (r.category && categoryCounter) bump(counts, `${categoryCounter}${r.category}`, 1);
    if (r.event_type === "page_view" || r.event_type === "add_to_cart") {
      if (price !== null) {
        bump(counts, "viewed_priced", 1);
        bump(counts, "viewed_price_cents", price);
      }
    } else if (r.event_type === "purchase") {
      // Revenue as the aggregates count it: price x quantity, nothing without a price.
      bump(counts, "purchases", 1);
      bump(counts, "revenue_cents", (price ?? 0) * quantity);
      if (price !== null) {
        bump(counts, "purchased_units_priced", quantity);
        bump(counts, "purchased_price_cents", price * quantity);
      }
    }
  }
  return out;
}

/**
 * addCounters adds counted events to `analytics.feature_days` with one statement (in the caller's
 * transaction). The rows travel as one JSON parameter (`[userId, day, counts]` each: one native
 * stringify, where an array of JSON texts was escaped element by element), and the merge is written
 * into the statement: the same sum as the function `analytics.add_counts` (each added counter
 * looked up in the stored ones, the others kept), but as a subquery of the plan instead of a SQL
 * function call per row, which Postgres cannot inline (its body has a subquery) and so ran through
 * the function executor for every user-day.
 *
 * The parameter is read as `json`, not `jsonb`: `json` input only checks the text, and each row's
 * three fields are taken from its short element, where making the whole document `jsonb` (a tree
 * of every counter of every user-day, then copied out element by element) cost Postgres about 40
 * of a delivery's 110 ms for 5,000 user-days. Only each row's counts become `jsonb`, as stored.
 */
export async function addCounters(sql: Sql, counted: Counted): Promise<void> {
  if (counted.size === 0) return;
  const doc = JSON.stringify(Array.from(counted.values(), (x) => [x.userId, x.day, x.counts]));
  await sql`
    insert into analytics.feature_days as f (user_id, day, counts)
    select r->>0, (r->>1)::date, (r->2)::jsonb from json_array_elements(${doc}::text::json) as r
    on conflict (user_id, day) do update set counts = f.counts || coalesce(
      (select jsonb_object_agg(key, coalesce((f.counts ->> key)::bigint, 0) + value::bigint) from jsonb_each_text(excluded.counts)), '{}'::jsonb)`;
}

/** Summed is a user's counters summed over the window, and on how many days each was non-zero. */
export type Summed = Map<string, { n: number; days: number }>;

/** SessionDepth is what the sessions table says of a user's sessions started in the window. */
export interface SessionDepth {
  sessions: number;
  events: number;
  pageViews: number;
}

/**
 * readWindow sums the counters of `userIds` over the 30 days ending today, reads their sessions
 * started in the window, and forgets their counters older than the window (nothing reads them).
 */
export async function readWindow(sql: Sql, userIds: readonly string[], now: Date): Promise<Map<string, { summed: Summed; depth: SessionDepth }>> {
  const first = windowFirstDay(now);
  const out = new Map<string, { summed: Summed; depth: SessionDepth }>();
  for (const u of userIds) out.set(u, { summed: new Map(), depth: { sessions: 0, events: 0, pageViews: 0 } });
  const ids = [...userIds];
  // The user-days' rows as they are (one JSON object each), summed here: Postgres only reads them
  // by key. Summed in SQL (every counter unpacked, grouped by user and counter, packed again), the
  // same read took Postgres 33-48 ms instead of 2 for 500 users of one day with 34 counters each,
  // and Postgres is what runs short first under load.
  const days = await sql<{ user_id: string; counts: Record<string, number> }[]>`
    select user_id, counts from analytics.feature_days where user_id = any(${ids}::text[]) and day >= ${first}::date`;
  for (const d of days) {
    const summed = out.get(d.user_id)?.summed;
    if (!summed) continue;
    for (const counter in d.counts) {
      const n = d.counts[counter]!;
      const s = summed.get(counter);
      if (s) {
        s.n += n;
        s.days++;
      } else summed.set(counter, { n, days: 1 });
    }
  }
  const sessions = await sql<{ user_id: string; sessions: number; events: string; page_views: string }[]>`
    select user_id, count(*)::int as sessions, sum(event_count)::bigint as events, sum(page_views)::bigint as page_views
    from analytics.sessions where user_id = any(${ids}::text[]) and start_time >= ${first}::date::timestamptz
    group by user_id`;
  for (const s of sessions) {
    const entry = out.get(s.user_id);
    if (entry) entry.depth = { sessions: s.sessions, events: Number(s.events), pageViews: Number(s.page_views) };
  }
  await sql`delete from analytics.feature_days where user_id = any(${ids}::text[]) and day < ${first}::date`;
  return out;
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;
const DEVICES = ["MOBILE", "TABLET", "DESKTOP"] as const;

/** computeFeatures turns a user's summed counters and sessions into the value of every feature type. */
export function computeFeatures(summed: Summed, depth: SessionDepth): FeatureValues {
  const n = (counter: string) => summed.get(counter)?.n ?? 0;
  const purchases = n("purchases");
  const revenueCents = n("revenue_cents");

  const byCategory = new Map<string, { views: number; cartAdditions: number; purchases: number }>();
  // Prefix tests, not a regular expression per counter: a refresh runs this for thousands of
  // users, and most of their counters are hours and devices.
  for (const [counter, { n: count }] of summed) {
    if (!counter.startsWith("category.")) continue;
    const kind = counter.startsWith(VIEW) ? VIEW : counter.startsWith(CART) ? CART : counter.startsWith(PURCHASE) ? PURCHASE : null;
    if (kind === null) continue;
    const category = counter.slice(kind.length);
    let c = byCategory.get(category);
    if (!c) byCategory.set(category, (c = { views: 0, cartAdditions: 0, purchases: 0 }));
    if (kind === VIEW) c.views += count;
    else if (kind === CART) c.cartAdditions += count;
    else c.purchases += count;
  }
  const scored = [...byCategory].map(([category, c]) => ({ category, ...c, score: c.views + 3 * c.cartAdditions + 5 * c.purchases }));
  const totalScore = scored.reduce((t, c) => t + c.score, 0);
  scored.sort((a, b) => b.score - a.score || (a.category < b.category ? -1 : a.category > b.category ? 1 : 0));

  const viewedPriced = n("viewed_priced");
  const purchasedUnits = n("purchased_units_priced");
  const viewed = viewedPriced ? Math.round(n("viewed_price_cents") / viewedPriced) : null;
  const bought = purchasedUnits ? Math.round(n("purchased_price_cents") / purchasedUnits) : null;
  const ratio = viewed !== null && bought !== null && viewed > 0 ? round(bought / viewed, 3) : null;

  const devices = { MOBILE: n("device:MOBILE"), TABLET: n("device:TABLET"), DESKTOP: n("device:DESKTOP") };
  const preferred = DEVICES.reduce<(typeof DEVICES)[number] | null>((best, d) => (devices[d] > (best ? devices[best] : 0) ? d : best), null);
  const hours = HOUR_COUNTERS.map(n);
  const top = Math.max(...hours);

  return {
    average_order_value: { purchases, revenueCents, averageOrderValueCents: purchases ? Math.round(revenueCents / purchases) : null },
    purchase_frequency: { purchases, purchaseDays: summed.get("purchases")?.days ?? 0, purchasesPerWeek: round((purchases * 7) / FEATURE_WINDOW_DAYS, 2) },
    category_preferences: {
      categories: scored.slice(0, 10).map((c) => ({ ...c, share: totalScore ? round(c.score / totalScore, 4) : 0 })),
    },
    price_sensitivity: {
      averageViewedPriceCents: viewed,
      averagePurchasedPriceCents: bought,
      ratio,
      level: ratio === null ? null : ratio < 0.8 ? "HIGH" : ratio < 1 ? "MEDIUM" : "LOW",
    },
    device_preference: { preferred, events: devices },
    hour_preference: { preferredHour: top > 0 ? hours.indexOf(top) : null, hours },
    session_depth: {
      sessions: depth.sessions,
      averageEvents: depth.sessions ? round(depth.events / depth.sessions, 2) : null,
      averagePageViews: depth.sessions ? round(depth.pageViews / depth.sessions, 2) : null,
    },
  };
}
