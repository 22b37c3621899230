import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { randomUUIDv7 } from "bun";
import { expectProblem, fieldPaths } from "../../support/http.ts";
import { startTestServer, type TestServer } from "../../support/server.ts";

const KEY = "test-ingest-key-0123456789";
const EVENTS = "/api/v1/analytics/events";

let s: TestServer;
beforeAll(async () => {
  // Workers off: these tests look at what ingestion stores, not at the aggregates.
  s = await startTestServer({ ANALYTICS_INGEST_KEY: KEY, ROLES: "api" });
});
afterAll(() => s.close());

const keyed = { "x-api-key": KEY };
const ev = (over: Record<string, unknown> = {}) => ({ userId: "u-1", sessionId: "s-1", eventType: "page_view", ...over });
const ingest = (json: unknown, headers: Record<string, string> = keyed, token?: string) => s.request(EVENTS, { method: "POST", json, headers, token });
const stored = async (userId: string) =>
  s.database.sql<
    {
      event_id: string;
      event_type: string;
      price_cents: string | null;
      category: string | null;
      features: Record<string, unknown>;
      version: string;
      source: string;
    }[]
  >`
    select event_id, event_type, price_cents, category, features, version, source from analytics.clickstream where user_id = ${userId} order by batch_index`;

describe("POST /analytics/events", () => {
  it("stores one event sent with the ingestion key, enriched", async () => {
    const res = await ingest(
      ev({ userId: "one-event", eventType: "purchase", price: 150, quantity: 2, deviceType: "iPhone", clientTime: "2026-11-28T10:30:00Z" }),
    );
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ accepted: 1, duplicates: 0, rejected: [] });
    const [row] = await stored("one-event");
    expect(row!.price_cents).toBe("15000");
    expect(row!.version).toBe("1.0");
    expect(row!.source).toBe("analytics-api");
    expect(row!.event_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);
    expect(row!.features).toMatchObject({ hour: 10, dayOfWeek: 6, weekend: true, businessHours: false, highValue: true, deviceCategory: "MOBILE" });
  });

  it("stores each event of a batch with its own features, shared or not", async () => {
    // Rows of one request that derive equal features share one document entry; these alternate
    // between three distinct ones, so a row given another's features would show.
    const kinds = [
      { deviceType: "iPhone", clientTime: "2026-11-28T10:30:00Z", expected: { hour: 10, deviceCategory: "MOBILE", highValue: false } },
      { deviceType: "desktop", clientTime: "2026-11-30T15:00:00Z", expected: { hour: 15, deviceCategory: "DESKTOP", highValue: false } },
      { deviceType: "iPad", clientTime: "2026-11-28T10:45:00Z", price: 150, expected: { hour: 10, deviceCategory: "TABLET", highValue: true } },
    ];
    const batch = Array.from({ length: 9 }, (_, i) => {
      const { expected: _e, ...k } = kinds[(i * 2) % 3]!;
      return ev({ userId: "own-features", eventType: k.price ? "purchase" : "page_view", quantity: k.price ? 1 : undefined, ...k });
    });
    const res = await ingest({ events: batch });
    expect(await res.json()).toEqual({ accepted: 9, duplicates: 0, rejected: [] });
    const rows = await stored("own-features");
    expect(rows).toHaveLength(9);
    expect(rows.map((r) => r.features)).toMatchObject(rows.map((_, i) => kinds[(i * 2) % 3]!.expected));
    expect(new Set(rows.map((r) => JSON.stringify(r.features))).size).toBe(3);
  });

  it("keeps the good events of a batch and names the bad ones by index", async () => {
    const res = await ingest({
      events: [
        ev({ userId: "partial" }),
        ev({ userId: "partial", eventType: "refund" }),
        { sessionId: "s" },
        ev({ userId: "partial", eventType: "purchase", price: -1, quantity: 0 }),
        ev({ userId: "partial", eventType: "search", query: "shoes" }),
        ev({ userId: "partial", clientTime: new Date(Date.now() + 6 * 60_000).toISOString() }),
        ev({ userId: "partial", clientTime: new Date(Date.now() + 4 * 60_000).toISOString() }),
        ev({ userId: "partial", quantity: 1001 }),
        ev({ userId: "partial", quantity: 1.5 }),
        ev({ userId: "partial", location: { country: "FR" } }),
        ev({ userId: "partial", clientTime: "yesterday" }),
      ],
    });
    expect(res.status).toBe(202);
    const body = (await res.json()) as { accepted: number; rejected: { index: number; errors: { path: string; code?: string }[] }[] };
    expect(body.accepted).toBe(3);
    const byIndex = Object.fromEntries(body.rejected.map((r) => [r.index, r.errors.map((e) => e.path).sort()]));
    expect(byIndex).toEqual({
      1: ["eventType"],
      2: ["eventType", "userId"],
      3: ["price", "quantity"],
      5: ["clientTime"],
      7: ["quantity"],
      8: ["quantity"],
      9: ["location.region"],
      10: ["clientTime"],
    });
    expect(body.rejected.find((r) => r.index === 5)!.errors[0]!.code).toBe("ANALYTICS.CLIENT_TIME_IN_FUTURE");
    expect((await stored("partial")).map((r) => r.event_type)).toEqual(["page_view", "search", "page_view"]);
  });

  it("takes 500 events and refuses 501 with a 413 problem, storing none of them", async () => {
    const ok = await ingest({ events: Array.from({ length: 500 }, () => ev({ userId: "five-hundred" })) });
    expect(ok.status).toBe(202);
    expect(((await ok.json()) as { accepted: number }).accepted).toBe(500);
    await expectProblem(await ingest({ events: Array.from({ length: 501 }, () => ev({ userId: "too-many" })) }), 413, "ANALYTICS.BATCH_TOO_LARGE");
    expect(await stored("too-many")).toHaveLength(0);
    expect(await stored("five-hundred")).toHaveLength(500);
  });

  it("answers 400 problems for a body that is not an event or a batch", async () => {
    for (const body of [[ev()], { events: [] }, { events: "x" }, "text", null]) {
      const p = await expectProblem(await ingest(body), 400, "ANALYTICS.BAD_BATCH");
      expect(fieldPaths(p)).toEqual(["body"]);
    }
    const res = await s.request(EVENTS, { method: "POST", body: "{not json", headers: { ...keyed, "content-type": "application/json" } });
    expect(res.status).toBe(400);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
  });

  it("counts a repeated eventId once, within a batch and across requests", async () => {
    const id = randomUUIDv7();
    const first = await ingest({ events: [ev({ userId: "dup", eventId: id }), ev({ userId: "dup", eventId: id })] });
    expect(await first.json()).toEqual({ accepted: 2, duplicates: 1, rejected: [] });
    const again = await ingest(ev({ userId: "dup", eventId: id }));
    expect(await again.json()).toEqual({ accepted: 1, duplicates: 1, rejected: [] });
    expect(await stored("dup")).toHaveLength(1);
    // The same UUID in upper case is the same id.
    const upper = randomUUIDv7();
    const cased = await ingest({ events: [ev({ userId: "dup-case", eventId: upper }), ev({ userId: "dup-case", eventId: upper.toUpperCase() })] });
    expect(await cased.json()).toEqual({ accepted: 2, duplicates: 1, rejected: [] });
    expect(await stored("dup-case")).toHaveLength(1);
    const batches = await s.database.sql<
      { n: number }[]
    >`select count(*)::int as n from outbox.events where type = 'analytics.events_ingested' and data->>'batchId' in (select batch_id::text from analytics.clickstream where user_id = 'dup')`;
    expect(batches[0]!.n).toBe(1);
  });

  it("refuses anonymous ingestion without the key or with a wrong one", async () => {
    await expectProblem(await ingest(ev(), {}), 401, "ANALYTICS.INGEST_KEY_REQUIRED");
    await expectProblem(await ingest(ev(), { "x-api-key": `${KEY}x` }), 401, "ANALYTICS.INGEST_KEY_REQUIRED");
    await expectProblem(await ingest(ev(), { "x-api-key": "" }), 401, "ANALYTICS.INGEST_KEY_REQUIRED");
  });

  it("lets a signed-in user send only their own events", async () => {
    const alice = await s.register();
    const res = await ingest({ events: [ev({ userId: alice.id }), ev({ userId: "someone-else" })] }, {}, alice.token);
    expect(res.status).toBe(202);
    const body = (await res.json()) as { accepted: number; rejected: { index: number; errors: { path: string; message: string; code: string }[] }[] };
    expect(body.accepted).toBe(1);
    expect(body.rejected).toEqual([{ index: 1, errors: [{ path: "userId", message: expect.any(String), code: "ANALYTICS.NOT_OWN_USER" }] }]);
    expect(await stored("someone-else")).toHaveLength(0);
    expect(await stored(alice.id)).toHaveLength(1);
  });

  it("enriches a purchase with the catalog's metadata: category, price when absent, profit and margin", async () => {
    const admin = await s.adminToken();
    const created = await s.request("/api/v1/products", {
      method: "POST",
      token: admin,
      json: { sku: `an-${Date.now()}`, name: "Lamp", category: "home", priceCents: 4000, costCents: 2500, stock: 10 },
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    await ingest({
      events: [
        ev({ userId: "catalog", eventType: "purchase", productId: id, price: 50, quantity: 3 }),
        ev({ userId: "catalog", eventType: "purchase", productId: id }),
      ],
    });
    const [withPrice, withoutPrice] = await stored("catalog");
    expect(withPrice!.category).toBe("home");
    expect(withPrice!.features).toMatchObject({ productName: "Lamp", costCents: 2500, profitCents: 7500, marginPercent: 50 });
    expect(withoutPrice!.price_cents).toBe("4000");
    expect(withoutPrice!.features).toMatchObject({ priceFromCatalog: true, profitCents: 1500, marginPercent: 37.5 });
  });
});

describe("ingestion without ANALYTICS_INGEST_KEY", () => {
  let off: TestServer;
  beforeAll(async () => {
    off = await startTestServer({ ROLES: "api" });
  });
  afterAll(() => off.close());

  it("has no key that works: anonymous ingestion is off, signed-in users still ingest", async () => {
    for (const key of ["", "undefined", "null", KEY]) {
      const res = await off.request(EVENTS, { method: "POST", json: ev(), headers: key ? { "x-api-key": key } : {} });
      await expectProblem(res, 401, "ANALYTICS.INGEST_KEY_REQUIRED");
    }
    const bob = await off.register();
    const res = await off.request(EVENTS, { method: "POST", json: ev({ userId: bob.id }), token: bob.token });
    expect(res.status).toBe(202);
  });
});
