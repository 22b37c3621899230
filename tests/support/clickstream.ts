/**
 * A seeded clickstream for the analytics tests: realistic mixes of event types, a few heavy
 * buyers (fraud windows), a few popular products (velocity), out-of-order events within the
 * allowed lateness, late events well past it, repeated event ids, and an independent reference
 * computation of every aggregate written as plainly as possible.
 */

/** GenEvent is one generated event as the client sends it. */
export interface GenEvent {
  eventId?: string;
  userId: string;
  sessionId: string;
  eventType: "page_view" | "add_to_cart" | "purchase" | "search";
  productId?: string;
  category?: string;
  price?: number;
  quantity?: number;
  deviceType?: string;
  location?: { country: string; region: string };
  query?: string;
  clientTime: string;
}

/** mulberry32 is a small seeded PRNG: the same seed gives the same stream. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const CATEGORIES = ["books", "electronics", "home", "toys"];
const COUNTRIES = ["US", "FR", "DE", "JP", "BR"];
const DEVICES = ["mobile", "desktop", "tablet", "iphone"];

/**
 * generateClickstream returns `batches` of events (in send order) starting at `base`: about
 * `count` events over roughly `count * 3.5` seconds of event time, with the disorder described above.
 */
export function generateClickstream(seed: number, base: number, count: number): GenEvent[][] {
  const rnd = mulberry32(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const hex = (n: number) => Array.from({ length: n }, () => Math.floor(rnd() * 16).toString(16)).join("");
  const uuid = () => `${hex(8)}-${hex(4)}-4${hex(3)}-a${hex(3)}-${hex(12)}`;
  const users = Array.from({ length: 25 }, (_, i) => `user-${String(i).padStart(2, "0")}`);
  const heavy = users.slice(0, 3);
  const products = Array.from({ length: 10 }, (_, i) => ({ id: `prod-${i}`, category: CATEGORIES[i % CATEGORIES.length]! }));
  let t = base + 60_000;
  const events: GenEvent[] = [];
  // Session boundaries: exactly 30 minutes apart (a new session), a millisecond less (the same
  // one), and an out-of-order event that bridges two sessions (they merge). [send after, time].
  const edge = (time: number): GenEvent => ({ userId: "edge", sessionId: "edge-s", eventType: "page_view", clientTime: new Date(time).toISOString() });
  const MIN = 60_000;
  const pending: [number, GenEvent][] = [
    [base + 5 * MIN, edge(base + 5 * MIN)],
    [base + 35 * MIN, edge(base + 35 * MIN)],
    [base + 65 * MIN, edge(base + 65 * MIN - 1)],
    [base + 100 * MIN, edge(base + 100 * MIN)],
    [base + 140 * MIN, edge(base + 140 * MIN)],
    [base + 141 * MIN, edge(base + 120 * MIN)],
  ];
  for (let i = 0; i < count; i++) {
    t += Math.floor(rnd() * 7000);
    while (pending.length && pending[0]![0] <= t) events.push(pending.shift()![1]);
    let time = t;
    const r = rnd();
    if (r < 0.2)
      time -= Math.floor(rnd() * 90_000); // out of order, within the lateness
    else if (r < 0.26)
      time -= 90_000 + Math.floor(rnd() * 4 * 60_000); // near the lateness bound: some on time, some late
    else if (r < 0.29) time -= 8 * 60_000 + Math.floor(rnd() * 40 * 60_000); // late
    const x = rnd();
    const eventType = x < 0.5 ? "page_view" : x < 0.65 ? "add_to_cart" : x < 0.75 ? "search" : "purchase";
    const isHeavy = eventType === "purchase" && rnd() < 0.4;
    const userId = isHeavy ? pick(heavy) : pick(users);
    const e: GenEvent = { userId, sessionId: `${userId}-s${Math.floor(t / 7200_000)}`, eventType, clientTime: new Date(time).toISOString() };
    if (rnd() < 0.8) e.eventId = uuid();
    if (rnd() < 0.9) e.deviceType = pick(DEVICES);
    if (eventType === "search") e.query = pick(["shoes", "lamp", "phone case"]);
    if (eventType === "purchase" || eventType === "add_to_cart") {
      const p = rnd() < 0.3 ? products[0]! : pick(products);
      e.productId = p.id;
      if (rnd() < 0.95) e.category = p.category;
      e.price = Math.floor(500 + rnd() * 30_000) / 100;
      e.quantity = 1 + Math.floor(rnd() * (isHeavy ? 3 : 6));
      if (rnd() < 0.9) {
        const country = isHeavy ? pick(COUNTRIES) : rnd() < 0.8 ? "US" : pick(COUNTRIES);
        e.location = { country, region: `${country}-r${Math.floor(rnd() * 3)}` };
      }
    }
    events.push(e);
  }
  // Send order: batches of 1-150, some with repeats of events already sent (same eventId).
  const batches: GenEvent[][] = [];
  const sent: GenEvent[] = [];
  for (let i = 0; i < events.length; ) {
    const size = 1 + Math.floor(rnd() * 150);
    const batch = events.slice(i, i + size);
    i += size;
    for (const prior of sent) if (prior.eventId && rnd() < 0.02) batch.splice(Math.floor(rnd() * (batch.length + 1)), 0, { ...prior });
    const inBatch = batch.filter((e) => e.eventId);
    if (inBatch.length && rnd() < 0.3) batch.push({ ...pick(inBatch) });
    batches.push(batch.slice(0, 500));
    sent.push(...batch);
  }
  return batches;
}

/** Expected holds every aggregate the consumer should end with. */
export interface Expected {
  revenue: {
    windowStart: string;
    windowEnd: string;
    category: string;
    orderCount: number;
    revenueCents: number;
    averageOrderValueCents: number;
    uniqueCustomers: number;
  }[];
  risk: {
    userId: string;
    windowStart: string;
    windowEnd: string;
    purchaseCount: number;
    totalCents: number;
    averageCents: number;
    countryCount: number;
    level: string;
  }[];
  velocity: { productId: string; windowStart: string; windowEnd: string; units: number; saleCount: number; velocity: string }[];
  sessions: {
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
  }[];
  late: { revenue: number; risk: number; velocity: number; sessions: number };
  /** Events applied at all (after dropping repeats), for sanity checks. */
  unique: number;
}

/**
 * expectedAggregates computes the aggregates straight from the events in send order: drop
 * repeated ids, then per aggregate an event is late when the highest event time seen before it
 * has reached its window's end plus the lateness; the rest are grouped and summed.
 */
export function expectedAggregates(batches: GenEvent[][], latenessMs = 120_000): Expected {
  const FIVE_MIN = 300_000;
  const HOUR = 3600_000;
  const seen = new Set<string>();
  let highest = -Infinity;
  const late = { revenue: 0, risk: 0, velocity: 0, sessions: 0 };
  const GAP = 30 * 60_000;
  type S = { userId: string; sessionId: string; events: GenEvent[]; start: number; end: number };
  const sessionsByKey = new Map<string, S[]>();
  const onTime = { revenue: [] as GenEvent[], risk: [] as GenEvent[], velocity: [] as GenEvent[] };
  let unique = 0;
  for (const e of batches.flat()) {
    if (e.eventId) {
      if (seen.has(e.eventId)) continue;
      seen.add(e.eventId);
    }
    unique++;
    const t = Date.parse(e.clientTime);
    // Sessions: join every session this event is within 30 minutes of (merging them), or start one.
    const key = `${e.userId} ${e.sessionId}`;
    const list = sessionsByKey.get(key) ?? [];
    sessionsByKey.set(key, list);
    const near = list.filter((x) => x.start - GAP < t && t < x.end + GAP);
    const lastEnd = Math.max(t, ...near.map((x) => x.end));
    if (lastEnd + GAP + latenessMs <= highest) late.sessions++;
    else {
      const joined: S = { userId: e.userId, sessionId: e.sessionId, events: [e], start: t, end: t };
      for (const x of near) {
        joined.events.push(...x.events);
        joined.start = Math.min(joined.start, x.start);
        joined.end = Math.max(joined.end, x.end);
        list.splice(list.indexOf(x), 1);
      }
      list.push(joined);
    }
    if (e.eventType === "purchase") {
      const tooLate = (size: number) => Math.floor(t / size) * size + size + latenessMs <= highest;
      if (tooLate(FIVE_MIN)) late.revenue++;
      else onTime.revenue.push(e);
      if (tooLate(HOUR)) late.risk++;
      else onTime.risk.push(e);
      if (e.productId) {
        if (tooLate(HOUR)) late.velocity++;
        else onTime.velocity.push(e);
      }
    }
    if (t > highest) highest = t;
  }
  const start = (e: GenEvent, size: number) => Math.floor(Date.parse(e.clientTime) / size) * size;
  const cents = (e: GenEvent) => Math.round((e.price ?? 0) * 100) * (e.quantity ?? 1);
  const iso = (ms: number) => new Date(ms).toISOString();
  const groups = <K extends string>(xs: GenEvent[], key: (e: GenEvent) => K) => {
    const m = new Map<K, GenEvent[]>();
    for (const e of xs) m.set(key(e), [...(m.get(key(e)) ?? []), e]);
    return m;
  };

  const revenue = [...groups(onTime.revenue, (e) => `${iso(start(e, FIVE_MIN))}|${e.category ?? "uncategorized"}`)].map(([k, es]) => {
    const [ws, category] = k.split("|") as [string, string];
    const total = es.reduce((s, e) => s + cents(e), 0);
    return {
      windowStart: ws,
      windowEnd: iso(Date.parse(ws) + FIVE_MIN),
      category,
      orderCount: es.length,
      revenueCents: total,
      averageOrderValueCents: Math.round(total / es.length),
      uniqueCustomers: new Set(es.map((e) => e.userId)).size,
    };
  });
  const risk = [...groups(onTime.risk, (e) => `${iso(start(e, HOUR))}|${e.userId}`)].map(([k, es]) => {
    const [ws, userId] = k.split("|") as [string, string];
    const total = es.reduce((s, e) => s + cents(e), 0);
    const countries = new Set(es.flatMap((e) => (e.location ? [e.location.country] : []))).size;
    const level = es.length > 10 && total > 500_000 ? "HIGH_RISK" : countries > 2 || total > 200_000 ? "MEDIUM_RISK" : "LOW_RISK";
    return {
      userId,
      windowStart: ws,
      windowEnd: iso(Date.parse(ws) + HOUR),
      purchaseCount: es.length,
      totalCents: total,
      averageCents: Math.round(total / es.length),
      countryCount: countries,
      level,
    };
  });
  const velocity = [...groups(onTime.velocity, (e) => `${iso(start(e, HOUR))}|${e.productId}`)]
    .map(([k, es]) => {
      const [ws, productId] = k.split("|") as [string, string];
      const units = es.reduce((s, e) => s + (e.quantity ?? 1), 0);
      return {
        productId,
        windowStart: ws,
        windowEnd: iso(Date.parse(ws) + HOUR),
        units,
        saleCount: es.length,
        velocity: units > 100 ? "FAST_MOVING" : units > 50 ? "MODERATE" : "SLOW_MOVING",
      };
    })
    .filter((v) => v.units > 10);
  const byKey =
    <T>(key: (x: T) => string) =>
    (a: T, b: T) =>
      key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;
  const sessions = [...sessionsByKey.values()].flat().map((x) => ({
    userId: x.userId,
    sessionId: x.sessionId,
    start: iso(x.start),
    end: iso(x.end),
    eventCount: x.events.length,
    pageViews: x.events.filter((e) => e.eventType === "page_view").length,
    cartAdditions: x.events.filter((e) => e.eventType === "add_to_cart").length,
    purchases: x.events.filter((e) => e.eventType === "purchase").length,
    revenueCents: x.events.filter((e) => e.eventType === "purchase").reduce((s, e) => s + cents(e), 0),
    closed: x.end + GAP + latenessMs <= highest,
  }));
  revenue.sort(byKey((r) => `${r.windowStart}|${r.category}`));
  risk.sort(byKey((r) => `${r.windowStart}|${r.userId}`));
  velocity.sort(byKey((r) => `${r.windowStart}|${r.productId}`));
  sessions.sort(byKey((r) => `${r.start}|${r.userId}|${r.sessionId}`));
  return { revenue, risk, velocity, sessions, late, unique };
}
