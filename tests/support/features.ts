/**
 * A seeded clickstream for the feature store tests, spread over the last 35 days (in event-time
 * order, so nothing is late for the sessions), with repeated event ids, events without a price,
 * a device or a category, and an independent reference computation of every feature, written as
 * plainly as possible (it shares no code with modules/analytics/features).
 */
import { type GenEvent, mulberry32 } from "./clickstream.ts";

const DAY = 86_400_000;
const MIN = 60_000;
const CATEGORIES = ["books", "electronics", "home", "toys", "garden"];
const DEVICES = ["mobile", "desktop", "tablet", "iPhone", "ipad", "android", "smart-tv"];
const TYPES = ["page_view", "page_view", "page_view", "add_to_cart", "purchase", "search"] as const;

/** featureClickstream returns events for `users` (in event-time order, every one with an eventId) and the ids sent twice. */
export function featureClickstream(seed: number, users: readonly string[], now: number): GenEvent[] {
  const rnd = mulberry32(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const today = Math.floor(now / DAY) * DAY;
  const events: GenEvent[] = [];
  let n = 0;
  for (const userId of users) {
    // Days 31-35 back are outside the window; 29 and 30 back are skipped so a test running across
    // midnight UTC cannot disagree with the server about the window's first day.
    const days = [35, 33, 31, 28, 20, 12, 7, 3, 1, 0].filter(() => rnd() < 0.85);
    for (const back of days) {
      const sessions = 1 + Math.floor(rnd() * 3);
      for (let s = 0; s < sessions; s++) {
        let t = today - back * DAY + Math.floor(rnd() * 20 * 60) * MIN;
        const sessionId = `${userId}-d${back}-s${s % 2}`;
        const count = 1 + Math.floor(rnd() * 8);
        for (let i = 0; i < count; i++) {
          if (t > now - 10 * MIN) break;
          const eventType = pick(TYPES);
          const e: GenEvent = { eventId: uuidFrom(seed, ++n), userId, sessionId, eventType, clientTime: new Date(t).toISOString() };
          if (eventType !== "search" && rnd() < 0.85) e.category = pick(CATEGORIES);
          if (eventType !== "search" && rnd() < 0.8) e.price = Math.floor(rnd() * 30_000) / 100;
          if (eventType === "purchase" && rnd() < 0.6) e.quantity = 1 + Math.floor(rnd() * 4);
          if (rnd() < 0.8) e.deviceType = pick(DEVICES);
          if (eventType === "search") e.query = "shoes";
          events.push(e);
          // Mostly a few minutes apart; now and then a pause of exactly 30 minutes, which starts a new session.
          t += rnd() < 0.15 ? 30 * MIN : (1 + Math.floor(rnd() * 10)) * MIN;
        }
      }
    }
  }
  return events.sort((a, b) => Date.parse(a.clientTime) - Date.parse(b.clientTime));
}

function uuidFrom(seed: number, n: number): string {
  const hex = (n * 2654435761 + seed).toString(16).padStart(12, "0").slice(-12);
  return `00000000-0000-4000-8000-${hex}`;
}

const r = (x: number, d: number) => Math.round(x * 10 ** d) / 10 ** d;
const device = (d: string) =>
  ["mobile", "smartphone", "iphone", "android"].includes(d.toLowerCase()) ? "MOBILE" : ["tablet", "ipad"].includes(d.toLowerCase()) ? "TABLET" : "DESKTOP";

/** expectedFeatures computes every feature of `userId` from the events, over the 30 UTC days ending on `now`'s day. */
export function expectedFeatures(all: readonly GenEvent[], userId: string, now: number): Record<string, unknown> {
  const first = Math.floor(now / DAY) * DAY - 29 * DAY;
  const mine = all.filter((e) => e.userId === userId);
  const events = mine.filter((e) => Date.parse(e.clientTime) >= first);
  const cents = (e: GenEvent) => (e.price === undefined ? undefined : Math.round(e.price * 100));
  const purchases = events.filter((e) => e.eventType === "purchase");
  const revenue = purchases.reduce((t, e) => t + (cents(e) ?? 0) * (e.quantity ?? 1), 0);
  const purchaseDays = new Set(purchases.map((e) => e.clientTime.slice(0, 10))).size;

  const cats = new Map<string, { views: number; cartAdditions: number; purchases: number }>();
  for (const e of events) {
    if (!e.category || e.eventType === "search") continue;
    const c = cats.get(e.category) ?? { views: 0, cartAdditions: 0, purchases: 0 };
    if (e.eventType === "page_view") c.views++;
    if (e.eventType === "add_to_cart") c.cartAdditions++;
    if (e.eventType === "purchase") c.purchases++;
    cats.set(e.category, c);
  }
  const scored = [...cats].map(([category, c]) => ({ category, ...c, score: c.views + 3 * c.cartAdditions + 5 * c.purchases }));
  const total = scored.reduce((t, c) => t + c.score, 0);
  scored.sort((a, b) => b.score - a.score || a.category.localeCompare(b.category));

  const viewed = events.filter((e) => (e.eventType === "page_view" || e.eventType === "add_to_cart") && e.price !== undefined);
  const bought = purchases.filter((e) => e.price !== undefined);
  const units = bought.reduce((t, e) => t + (e.quantity ?? 1), 0);
  const avgViewed = viewed.length ? Math.round(viewed.reduce((t, e) => t + cents(e)!, 0) / viewed.length) : null;
  const avgBought = units ? Math.round(bought.reduce((t, e) => t + cents(e)! * (e.quantity ?? 1), 0) / units) : null;
  const ratio = avgViewed && avgBought !== null ? r(avgBought / avgViewed, 3) : null;

  const devices = { MOBILE: 0, TABLET: 0, DESKTOP: 0 };
  for (const e of events) if (e.deviceType) devices[device(e.deviceType)]++;
  let preferred: string | null = null;
  for (const d of ["MOBILE", "TABLET", "DESKTOP"] as const) if (devices[d] > (preferred ? devices[preferred as keyof typeof devices] : 0)) preferred = d;
  const hours = Array.from({ length: 24 }, () => 0);
  for (const e of events) hours[new Date(e.clientTime).getUTCHours()]!++;
  const top = Math.max(...hours);

  // Sessions over all the user's events (a session may start before the window), 30 minutes without an event ending one.
  const sessions: { start: number; events: number; pageViews: number }[] = [];
  for (const sid of new Set(mine.map((e) => e.sessionId))) {
    const sorted = mine.filter((e) => e.sessionId === sid).sort((a, b) => Date.parse(a.clientTime) - Date.parse(b.clientTime));
    let cur: { start: number; end: number; events: number; pageViews: number } | undefined;
    for (const e of sorted) {
      const t = Date.parse(e.clientTime);
      if (!cur || t - cur.end >= 30 * MIN) {
        if (cur) sessions.push(cur);
        cur = { start: t, end: t, events: 0, pageViews: 0 };
      }
      cur.end = t;
      cur.events++;
      if (e.eventType === "page_view") cur.pageViews++;
    }
    if (cur) sessions.push(cur);
  }
  const recent = sessions.filter((s) => s.start >= first);

  const features: Record<string, unknown> = {
    average_order_value: {
      purchases: purchases.length,
      revenueCents: revenue,
      averageOrderValueCents: purchases.length ? Math.round(revenue / purchases.length) : null,
    },
    purchase_frequency: { purchases: purchases.length, purchaseDays, purchasesPerWeek: r((purchases.length * 7) / 30, 2) },
    category_preferences: { categories: scored.slice(0, 10).map((c) => ({ ...c, share: total ? r(c.score / total, 4) : 0 })) },
    price_sensitivity: {
      averageViewedPriceCents: avgViewed,
      averagePurchasedPriceCents: avgBought,
      ratio,
      level: ratio === null ? null : ratio < 0.8 ? "HIGH" : ratio < 1 ? "MEDIUM" : "LOW",
    },
    device_preference: { preferred, events: devices },
    hour_preference: { preferredHour: top > 0 ? hours.indexOf(top) : null, hours },
    session_depth: {
      sessions: recent.length,
      averageEvents: recent.length ? r(recent.reduce((t, s) => t + s.events, 0) / recent.length, 2) : null,
      averagePageViews: recent.length ? r(recent.reduce((t, s) => t + s.pageViews, 0) / recent.length, 2) : null,
    },
  };
  return features;
}
