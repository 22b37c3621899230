import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { sql } from "drizzle-orm";
import pino from "pino";
import { queryEvents } from "../../outbox/admin.ts";
import type { EventEnvelope } from "../../outbox/envelope.ts";
import { createHttpApp } from "../../src/http/app.ts";
import { createPgIdempotencyStore } from "../../src/http/idempotency.ts";
import { createMemoryRateLimiter } from "../../src/http/rate-limit.ts";
import { testAuth } from "../support/auth.ts";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { eventually } from "../support/eventually.ts";
import { startTestOutbox, TestConcluded, TestFollowed, TestHappened, type TestOutbox } from "../support/outbox.ts";

// The two growing lists of the event platform, walked page by page while rows keep arriving:
// a walk must see every row that existed when it started exactly once.

let tdb: TestDatabase;
let t: TestOutbox;
let app: ReturnType<typeof createHttpApp>;
let admin: string;
const auth = testAuth();

// biome-ignore lint/suspicious/noExplicitAny: each test reads the shape of the route it calls
async function get(path: string): Promise<{ status: number; type: string | null; body: any }> {
  const res = await app.request(path, { headers: { authorization: `Bearer ${admin}` } });
  return { status: res.status, type: res.headers.get("content-type"), body: await res.json() };
}

/** walk follows nextCursor from the first page to the last, calling `between` after each page. */
async function walk<T>(path: string, between: (pageNo: number) => Promise<void> = async () => {}): Promise<T[][]> {
  const pages: T[][] = [];
  let cursor: string | null = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const res = await get(cursor ? `${path}${sep}cursor=${cursor}` : path);
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(["items", "nextCursor"]);
    pages.push(res.body.items);
    cursor = res.body.nextCursor;
    // Bounded: a walk that never ends is a failure, not a hang.
    if (pages.length > 50) throw new Error(`${path}: still paging after 50 pages`);
    if (cursor) await between(pages.length);
  } while (cursor);
  return pages;
}

const visibleCount = async (type: string) => (await queryEvents(t.database.db, { type, limit: 1000 })).length;

beforeAll(async () => {
  tdb = await createTestDatabase();
  t = await startTestOutbox(tdb.url, [
    {
      // Every event noted "poison" is dead-lettered on its first failure.
      name: "testing.poison",
      on: [TestHappened],
      pattern: { data: { note: ["poison"] } },
      maxAttempts: 1,
      handler: async () => {
        throw new Error("poison pill");
      },
    },
  ]);
  app = createHttpApp(
    {
      log: pino({ level: "silent" }),
      verifyToken: auth.verify,
      rateLimiter: createMemoryRateLimiter({ max: 100_000, windowSeconds: 60 }),
      idempotencyStore: createPgIdempotencyStore(t.database.db, 60),
      bodyLimitBytes: 1 << 20,
      corsOrigins: [],
      servesApi: true,
      readiness: async () => [],
    },
    (api) => t.outbox.routes(api),
  );
  admin = (await auth.issue({ id: crypto.randomUUID(), role: "admin", username: "boss" })).accessToken;
});
afterAll(async () => {
  await t.close();
  await tdb.drop();
});

describe("GET /api/v1/events", () => {
  it("walks every event exactly once, in log order, while new events are appended between pages", async () => {
    const follow = (n: number) => TestFollowed.with({ n }, { subject: `walk-${n}` });
    await t.append(Array.from({ length: 23 }, (_, i) => follow(i)));
    await eventually(async () => (await visibleCount("test.followed")) === 23, 15_000);

    let next = 1000;
    const pages = await walk<EventEnvelope>("/api/v1/events?type=test.followed&limit=5", async (pageNo) => {
      // Two single-event transactions and one batch arrive after every page but the last few.
      if (pageNo > 4) return;
      await t.append([follow(next++)]);
      await t.append([follow(next++)]);
      await t.append([follow(next++), follow(next++)]);
    });
    const seen = pages.flat().map((e) => (e.data as { n: number }).n);
    expect(pages.slice(0, -1).every((p) => p.length === 5)).toBe(true);
    expect(new Set(seen).size).toBe(seen.length);
    // Every event that existed at the start, in order, then arrivals (those committed in time).
    expect(seen.slice(0, 23)).toEqual(Array.from({ length: 23 }, (_, i) => i));
    expect(seen.slice(23).every((n) => n >= 1000)).toBe(true);
    // An arrival is missed only if the walk ended before it became visible; then it is the newest.
    const arrivals = seen.slice(23);
    expect(arrivals).toEqual(Array.from({ length: arrivals.length }, (_, i) => 1000 + i));
  });

  it("never skips an event whose transaction commits after later events were read", async () => {
    // Transaction L appends first (lower position) and commits last: a reader paging by position
    // would read past it while it is open, then never come back. Readers page by (transaction,
    // position) below the oldest open transaction, and resume from the last key they were given.
    const type = TestConcluded.type;
    await t.append([TestConcluded.with({ n: 0 }, { subject: "before" })]);
    await eventually(async () => (await visibleCount(type)) === 1, 15_000);
    let releaseL!: () => void;
    const lHolds = new Promise<void>((r) => (releaseL = r));
    let lAppended!: () => void;
    const lIsIn = new Promise<void>((r) => (lAppended = r));
    const late = t.database.db.transaction(async (tx) => {
      await t.outbox.appender.append(tx, [TestConcluded.with({ n: 1 }, { subject: "late" })]);
      // A statement after the append, so the write-behind insert has run: L holds its position.
      await tx.execute(sql`select 1`);
      lAppended();
      await lHolds;
    });
    await lIsIn;
    try {
      await t.append([TestConcluded.with({ n: 2 }, { subject: "after" })]);
      // The reader catches up while L is still open.
      const first = await queryEvents(t.database.db, { type, limit: 100 });
      expect(first.map((r) => r.event.subject)).toEqual(["before"]);
      releaseL();
      await late;
      const rest = await eventually(async () => {
        const r = await queryEvents(t.database.db, { type, after: first.at(-1)!.key, limit: 100 });
        return r.length === 2 && r;
      }, 15_000);
      expect(rest.map((r) => r.event.subject)).toEqual(["late", "after"]);
      expect(BigInt(rest[0]!.event.sequence!)).toBeLessThan(BigInt(rest[1]!.event.sequence!));
    } finally {
      releaseL();
      await late.catch(() => {});
    }
  });

  it("answers a garbled, forged or foreign cursor with a 400 problem, never a 500", async () => {
    const cursor = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
    const bad = [
      "not a cursor",
      "%%%",
      "eyJ", // base64url of a truncated JSON text
      cursor({ position: "1" }),
      cursor(["1"]),
      cursor(["18446744073709551616", "1"]), // one past the largest transaction id
      cursor(["1", "9223372036854775808"]), // one past the largest position
      cursor(["-1", "1"]),
      cursor(["1e3", "1"]), // not digits, yet a valid BigInt() argument would be no better
      cursor([1, 1]),
      cursor([crypto.randomUUID()]), // a dead-letter cursor
      "A".repeat(5000),
    ];
    for (const c of bad) {
      const res = await get(`/api/v1/events?cursor=${encodeURIComponent(c)}`);
      expect([c.slice(0, 40), res.status, res.type]).toEqual([c.slice(0, 40), 400, "application/problem+json"]);
    }
    const res = await get(`/api/v1/events?cursor=${cursor(["1"])}`);
    expect(res.body).toMatchObject({ code: "PAGINATION.INVALID_CURSOR", errors: [{ path: "query.cursor" }] });
  });

  it("takes limit 1-100, 20 by default", async () => {
    expect((await get("/api/v1/events?type=test.followed")).body.items).toHaveLength(20);
    expect((await get("/api/v1/events?type=test.followed&limit=100")).body.items.length).toBeGreaterThan(20);
    for (const limit of ["0", "101", "-1", "1.5", "abc"]) expect((await get(`/api/v1/events?limit=${limit}`)).status).toBe(400);
  });
});

describe("GET /api/v1/admin/dead-letters", () => {
  const poisonCount = async () => (await t.database.sql`select count(*)::int as n from outbox.dead_letters`)[0]!.n as number;
  let n = 0;
  const poison = (count: number) => t.append(Array.from({ length: count }, () => t.happened(n++, `poison-${n}`, "poison")));

  it("walks every dead letter exactly once, newest first, while new ones arrive ahead of the walk", async () => {
    await poison(12);
    await eventually(async () => (await poisonCount()) === 12, 15_000);
    const existing = (await t.database.sql`select id::text from outbox.dead_letters order by id desc`).map((r) => r.id as string);

    const pages = await walk<{ id: string; status: string; event: EventEnvelope }>("/api/v1/admin/dead-letters?limit=5", async () => {
      // New dead letters land at the head of the list, before the next page is read: an offset
      // would now repeat rows; a keyset continues where it stopped.
      const before = await poisonCount();
      await poison(2);
      await eventually(async () => (await poisonCount()) === before + 2, 15_000);
    });
    expect(pages.map((p) => p.length)).toEqual([5, 5, 2]);
    expect(pages.flat().map((d) => d.id)).toEqual(existing);
    expect(pages.flat()[0]).toMatchObject({ status: "dead", event: { type: "test.happened", data: { note: "poison" } } });
    // The arrivals are all there, ahead of what the walk saw.
    const fresh = (await get("/api/v1/admin/dead-letters?limit=100")).body.items.map((d: { id: string }) => d.id);
    expect(fresh).toHaveLength(16);
    expect(fresh.slice(4)).toEqual(existing);
  });

  it("filters pages by subscription and status, and rejects a foreign cursor", async () => {
    const res = await get("/api/v1/admin/dead-letters?subscription=testing.poison&status=dead&limit=3");
    expect(res.body.items).toHaveLength(3);
    const next = await get(`/api/v1/admin/dead-letters?subscription=testing.poison&status=dead&limit=3&cursor=${res.body.nextCursor}`);
    expect(next.body.items.map((d: { id: string }) => d.id)).not.toContain(res.body.items[2].id);
    expect((await get("/api/v1/admin/dead-letters?subscription=nobody")).body).toEqual({ items: [], nextCursor: null });
    const eventCursor = Buffer.from(JSON.stringify(["1", "1"])).toString("base64url");
    expect((await get(`/api/v1/admin/dead-letters?cursor=${eventCursor}`)).status).toBe(400);
  });
});
