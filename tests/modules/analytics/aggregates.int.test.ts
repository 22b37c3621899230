import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import pino from "pino";
import { createServer, type Server } from "../../../src/server.ts";
import { type Expected, expectedAggregates, type GenEvent, generateClickstream } from "../../support/clickstream.ts";
import { eventually } from "../../support/eventually.ts";
import { expectProblem } from "../../support/http.ts";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { caughtUp } from "../../support/social.ts";

const KEY = "test-ingest-key-0123456789";
const HOUR = 3600_000;
// Three whole hours back, so every generated time is in the past (the stream spans about 2.5 h).
const base = Math.floor(Date.now() / HOUR) * HOUR - 3 * HOUR;

async function send(s: TestServer, batches: GenEvent[][]): Promise<void> {
  for (const events of batches) {
    const res = await s.request("/api/v1/analytics/events", { method: "POST", json: { events }, headers: { "x-api-key": KEY } });
    const body = (await res.json()) as { accepted: number; rejected: unknown[] };
    if (res.status !== 202 || body.rejected.length) throw new Error(`ingest: ${res.status} ${JSON.stringify(body)}`);
  }
}

async function all<T>(s: TestServer, token: string, path: string): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | null = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const res = await s.request(`${path}${sep}limit=100${cursor ? `&cursor=${cursor}` : ""}`, { token });
    if (res.status !== 200) throw new Error(`${path}: ${res.status} ${await res.text()}`);
    const page = (await res.json()) as { items: T[]; nextCursor: string | null };
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return items;
}

async function actual(s: TestServer, token: string): Promise<Omit<Expected, "unique">> {
  const status = await s.request("/api/v1/analytics/consumer", { token });
  return {
    revenue: await all(s, token, "/api/v1/analytics/revenue"),
    risk: await all(s, token, "/api/v1/analytics/risk"),
    velocity: await all(s, token, "/api/v1/analytics/velocity"),
    sessions: await all(s, token, "/api/v1/analytics/sessions"),
    late: ((await status.json()) as { lateEvents: Expected["late"] }).lateEvents,
  };
}

/** expectConverges polls the admin reads until they equal the reference computation. */
async function expectConverges(s: TestServer, token: string, want: Expected, timeoutMs = 20_000): Promise<void> {
  const { unique: _, ...expected } = want;
  let last: unknown;
  try {
    await eventually(
      async () => {
        last = await actual(s, token);
        expect(last).toEqual(expected);
      },
      timeoutMs,
      100,
    );
  } catch (err) {
    expect(last).toEqual(expected); // the readable diff
    throw err;
  }
}

type Alert = { type: string; data: Record<string, unknown> };
const alerts = (s: TestServer) =>
  s.database.sql<
    Alert[]
  >`select type, data from outbox.events where type in ('analytics.fraud_risk_detected', 'analytics.product_velocity_changed') order by position`;

describe("windowed aggregates over a seeded clickstream", () => {
  let s: TestServer;
  let token: string;
  const batches = generateClickstream(42, base, 2500);
  const want = expectedAggregates(batches);
  beforeAll(async () => {
    s = await startTestServer({ ANALYTICS_INGEST_KEY: KEY });
    token = await s.adminToken();
  });
  afterAll(() => s.close());

  it("generates a stream that exercises every rule", () => {
    expect(want.late.revenue).toBeGreaterThan(10);
    expect(want.unique).toBeLessThan(batches.flat().length); // repeats
    expect(new Set(want.risk.map((r) => r.level))).toEqual(new Set(["LOW_RISK", "MEDIUM_RISK", "HIGH_RISK"]));
    expect(new Set(want.velocity.map((v) => v.velocity))).toEqual(new Set(["FAST_MOVING", "MODERATE", "SLOW_MOVING"]));
    expect(want.revenue.some((r) => r.category === "uncategorized")).toBe(true);
    expect(want.late.sessions).toBeGreaterThan(0);
    expect(want.sessions.some((x) => x.closed) && want.sessions.some((x) => !x.closed)).toBe(true);
  });

  it("ends with exactly the aggregates a straightforward computation gives", async () => {
    await send(s, batches);
    await expectConverges(s, token, want);
  });

  it("counts late events in the late_events metric, per aggregate", async () => {
    const text = await (await s.request("/metrics")).text();
    const metric = (a: string) => Number(new RegExp(`^late_events(?:_total)?\\{aggregate="${a}"\\} (\\d+)$`, "m").exec(text)?.[1]);
    expect({ revenue: metric("revenue"), risk: metric("risk"), velocity: metric("velocity"), sessions: metric("sessions") }).toEqual(want.late);
  });

  it("splits sessions at exactly 30 minutes of inactivity, keeps them a millisecond less, and merges across a bridging event", async () => {
    const edge = await all<Expected["sessions"][number]>(s, token, "/api/v1/analytics/sessions?userId=edge");
    const at = (min: number) => new Date(base + min * 60_000).toISOString();
    expect(edge.map((x) => [x.start, x.end, x.eventCount])).toEqual([
      [at(5), at(5), 1],
      [at(35), new Date(base + 65 * 60_000 - 1).toISOString(), 2],
      [at(100), at(140), 3],
    ]);
  });

  it("alerts each MEDIUM or HIGH user-hour once per level, and each reported product-hour at its current velocity", async () => {
    const sent = await alerts(s);
    const risk = sent.filter((a) => a.type === "analytics.fraud_risk_detected").map((a) => `${a.data.userId}|${a.data.windowStart}|${a.data.level}`);
    expect(new Set(risk).size).toBe(risk.length);
    const risky = want.risk.filter((r) => r.level !== "LOW_RISK");
    // The final level of each risky user-hour was alerted; nothing was alerted for the others.
    for (const r of risky) expect(risk).toContain(`${r.userId}|${r.windowStart}|${r.level}`);
    const riskyKeys = new Set(risky.map((r) => `${r.userId}|${r.windowStart}`));
    for (const k of risk) expect(riskyKeys.has(k.split("|").slice(0, 2).join("|"))).toBe(true);

    const moves = sent.filter((a) => a.type === "analytics.product_velocity_changed").map((a) => a.data);
    const seen = new Set(moves.map((m) => `${m.productId}|${m.windowStart}|${m.velocity}`));
    expect(seen.size).toBe(moves.length);
    for (const v of want.velocity) {
      const mine = moves.filter((m) => m.productId === v.productId && m.windowStart === v.windowStart);
      expect(mine.at(-1)!.velocity).toBe(v.velocity);
      expect(mine[0]!.previous).toBeNull();
    }
    expect(moves.length).toBeGreaterThanOrEqual(want.velocity.length);
  });

  it("pages with cursors and filters by time, category and level", async () => {
    const firstHour = new Date(base + HOUR).toISOString();
    const secondHour = new Date(base + 2 * HOUR).toISOString();
    const books = await all<Expected["revenue"][number]>(s, token, `/api/v1/analytics/revenue?from=${firstHour}&to=${secondHour}&category=books`);
    expect(books).toEqual(want.revenue.filter((r) => r.category === "books" && r.windowStart >= firstHour && r.windowStart < secondHour));
    expect(books.length).toBeGreaterThan(1);
    const high = await all<Expected["risk"][number]>(s, token, "/api/v1/analytics/risk?level=HIGH_RISK");
    expect(high).toEqual(want.risk.filter((r) => r.level === "HIGH_RISK"));
    const velocity = await all<Expected["velocity"][number]>(s, token, `/api/v1/analytics/velocity?from=${firstHour}`);
    expect(velocity).toEqual(want.velocity.filter((v) => v.windowStart >= firstHour));
    const small = await s.request("/api/v1/analytics/revenue?limit=3", { token });
    const page = (await small.json()) as { items: unknown[]; nextCursor: string };
    expect(page.items).toEqual(want.revenue.slice(0, 3));
    const next = (await (await s.request(`/api/v1/analytics/revenue?limit=3&cursor=${page.nextCursor}`, { token })).json()) as { items: unknown[] };
    expect(next.items).toEqual(want.revenue.slice(3, 6));
  });

  it("keeps the admin reads for admins and refuses bad queries with 400 problems", async () => {
    const user = await s.register();
    await expectProblem(await s.request("/api/v1/analytics/revenue", { token: user.token }), 403, "AUTH.ADMIN_REQUIRED");
    await expectProblem(await s.request("/api/v1/analytics/risk?level=SCARY", { token }), 400, "VALIDATION.FAILED");
    await expectProblem(await s.request("/api/v1/analytics/revenue?from=yesterday", { token }), 400, "VALIDATION.FAILED");
    await expectProblem(await s.request("/api/v1/analytics/velocity?cursor=abc", { token }), 400, "PAGINATION.INVALID_CURSOR");
  });

  it("changes nothing when both consumers are replayed from the start of the log (each batch is applied once)", async () => {
    const countsOf = async () => ({
      aggregates: await actual(s, token),
      alerts: (await alerts(s)).length,
      features: await s.database.sql`select user_id, day::text, counts from analytics.feature_days order by user_id, day`,
    });
    const before = await countsOf();
    expect(before.features.length).toBeGreaterThan(0);
    const position = async (name: string) =>
      (await s.database.sql<{ p: string }[]>`select max(last_position)::text as p from outbox.subscriptions where name = ${name}`)[0]!.p;
    for (const name of ["analytics.aggregate", "analytics.sessions"]) {
      const reached = await position(name);
      const res = await s.request(`/api/v1/admin/subscriptions/${name}/replay`, { method: "POST", token, json: { from: 0 } });
      expect(res.status).toBe(200);
      // Delivered again up to where it stood before.
      await eventually(async () => BigInt(await position(name)) >= BigInt(reached), 20_000);
      await caughtUp(s, name, ["analytics.events_ingested"], 20_000);
    }
    expect(await countsOf()).toEqual(before);
  });
});

describe("restarting the consumer mid-stream", () => {
  let s: TestServer;
  let token: string;
  const workers: Server[] = [];
  const batches = generateClickstream(7, base, 1500);
  const want = expectedAggregates(batches);
  beforeAll(async () => {
    // The test server only ingests and answers; the consumer runs in worker-only servers on the same database.
    s = await startTestServer({ ANALYTICS_INGEST_KEY: KEY, ROLES: "api" });
    token = await s.adminToken();
  });
  afterAll(async () => {
    for (const w of workers) await w.stop().catch(() => {});
    await s.close();
  });
  const worker = async () => {
    const w = await createServer({ ...s.config, ROLES: ["worker"], MODULES: ["analytics"] }, { log: pino({ level: "silent" }) });
    workers.push(w);
    return w;
  };

  it("neither loses nor double counts an event", async () => {
    const third = Math.floor(batches.length / 3);
    const first = await worker();
    await send(s, batches.slice(0, third));
    await eventually(async () => (await actual(s, token)).revenue.length > 0, 10_000);
    // Stop while events keep arriving: a delivery in flight either commits with its checkpoint or not at all.
    await Promise.all([send(s, batches.slice(third, 2 * third)), Bun.sleep(20).then(() => first.stop())]);
    await send(s, batches.slice(2 * third));
    const partial = await actual(s, token);
    expect(partial).not.toEqual({ revenue: want.revenue, risk: want.risk, velocity: want.velocity, sessions: want.sessions, late: want.late });
    await worker();
    await expectConverges(s, token, want);
    const dead = await s.database.sql<{ n: number }[]>`select count(*)::int as n from outbox.dead_letters`;
    expect(dead[0]!.n).toBe(0);
  });
});

describe("the watermark of the windows", () => {
  let s: TestServer;
  let token: string;
  beforeAll(async () => {
    s = await startTestServer({ ANALYTICS_INGEST_KEY: KEY });
    token = await s.adminToken();
  });
  afterAll(() => s.close());

  it("is moved by events that are not purchases, so a purchase after them can be late", async () => {
    const at = (ms: number) => new Date(base + ms).toISOString();
    const view = (ms: number): GenEvent => ({ userId: "wm-user", sessionId: "wm", eventType: "page_view", clientTime: at(ms) });
    const purchase = (ms: number): GenEvent => ({ userId: "wm-user", sessionId: "wm", eventType: "purchase", category: "wm", price: 5, clientTime: at(ms) });
    const status = async () =>
      (await (await s.request("/api/v1/analytics/consumer", { token })).json()) as { watermark: string | null; lateEvents: Expected["late"] };
    // A purchase, then page views two hours later: the delivery reads the purchase and ends on a page view.
    await send(s, [[purchase(0), view(2 * HOUR), view(2 * HOUR + 1000)]]);
    await eventually(async () => expect((await status()).watermark).toBe(at(2 * HOUR + 1000)), 10_000);
    // Its revenue window (5 minutes + 2 of lateness) and risk hour closed long before that.
    await send(s, [[purchase(60_000)]]);
    await eventually(async () => expect((await status()).lateEvents).toMatchObject({ revenue: 1, risk: 1, velocity: 0 }), 10_000);
  });
});
