import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import pino from "pino";
import type { EventEnvelope } from "../../outbox/envelope.ts";
import { defineSubscription } from "../../outbox/index.ts";
import { createHttpApp } from "../../src/http/app.ts";
import { createPgIdempotencyStore } from "../../src/http/idempotency.ts";
import { createMemoryRateLimiter } from "../../src/http/rate-limit.ts";
import { defineRoute } from "../../src/http/route.ts";
import { createMetrics } from "../../src/observability/metrics.ts";
import { testAuth } from "../support/auth.ts";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { eventually } from "../support/eventually.ts";
import { recordEffect, startTestOutbox, TestConcluded, TestFollowed, TestHappened, type TestOutbox } from "../support/outbox.ts";

let tdb: TestDatabase;
let t: TestOutbox;
let app: ReturnType<typeof createHttpApp>;
let admin: string;
let user: string;
let poisonFixed = false;
const metrics = createMetrics();

const auth = testAuth();
const call = async (method: string, path: string, token: string | undefined, json?: unknown) => {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (json !== undefined) headers["content-type"] = "application/json";
  const res = await app.request(path, { method, headers, body: json === undefined ? undefined : JSON.stringify(json) });
  const text = await res.text();
  return { status: res.status, type: res.headers.get("content-type"), body: text ? JSON.parse(text) : undefined };
};

beforeAll(async () => {
  tdb = await createTestDatabase();
  t = await startTestOutbox(
    tdb.url,
    [
      defineSubscription({
        name: "testing.follow",
        on: [TestHappened],
        pattern: { data: { note: ["chain"] } },
        handler: async (e, { tx }) => {
          const n = e.data.n;
          // Two children for the root, so the tree branches.
          await t.outbox.appender.append(tx, [TestFollowed.with({ n }, { subject: e.subject }), TestFollowed.with({ n: n + 1 }, { subject: e.subject })]);
        },
      }),
      defineSubscription({
        name: "testing.conclude",
        on: [TestFollowed],
        handler: async (e, { tx }) => {
          await t.outbox.appender.append(tx, [TestConcluded.with({ n: e.data.n }, { subject: e.subject })]);
        },
      }),
      defineSubscription({
        name: "testing.poison",
        on: [TestHappened],
        pattern: { type: ["test.happened"], data: { note: ["poison"] } },
        maxAttempts: 2,
        backoff: { baseMs: 5, maxMs: 10 },
        handler: async (e, { tx }) => {
          if (!poisonFixed) throw new Error("poison pill");
          await recordEffect(tx, e, "poison");
        },
      }),
    ],
    { metrics: metrics.outbox },
  );
  const log = pino({ level: "silent" });
  app = createHttpApp(
    {
      log,
      verifyToken: auth.verify,
      rateLimiter: createMemoryRateLimiter({ max: 100_000, windowSeconds: 60 }),
      idempotencyStore: createPgIdempotencyStore(t.database.db, 60),
      bodyLimitBytes: 1 << 20,
      corsOrigins: [],
      servesApi: true,
      readiness: async () => [],
      metrics: () => metrics.render(t.outbox),
    },
    (api) => {
      t.outbox.routes(api);
      api.openapi(defineRoute({ access: "user" }, { method: "post", path: "/testing/happen", responses: { 204: { description: "Appended" } } }), async (c) => {
        await t.append([t.happened(77, "from-http")]);
        return c.body(null, 204);
      });
    },
  );
  admin = (await auth.issue({ id: crypto.randomUUID(), role: "admin", username: "boss" })).accessToken;
  user = (await auth.issue({ id: crypto.randomUUID(), role: "user", username: "pleb" })).accessToken;
});
afterAll(async () => {
  await t.close();
  await tdb.drop();
});

describe("lineage", () => {
  it("returns the causation chain to the root and the whole tree for a three-level chain", async () => {
    await t.append([t.happened(1, "order-1", "chain")]);
    const concluded = await eventually(async () => {
      const r = await call("GET", "/api/v1/events?type=test.concluded&subject=order-1", admin);
      return r.body.items.length === 2 && (r.body.items as EventEnvelope[]);
    });
    const leaf = concluded.find((e) => (e.data as { n: number }).n === 2)!;
    const res = await call("GET", `/api/v1/events/${leaf.id}/lineage`, admin);
    expect(res.status).toBe(200);
    const { event, ancestors, root, tree } = res.body;
    expect(event.id).toBe(leaf.id);
    expect(ancestors.map((a: EventEnvelope) => a.type)).toEqual(["test.followed", "test.happened"]);
    expect(root.type).toBe("test.happened");
    expect(tree.event.id).toBe(root.id);
    // root -> two follows -> one conclusion each
    expect(tree.caused.map((c: { event: EventEnvelope }) => [c.event.type, (c.event.data as { n: number }).n])).toEqual([
      ["test.followed", 1],
      ["test.followed", 2],
    ]);
    for (const child of tree.caused) {
      expect(child.caused).toHaveLength(1);
      expect(child.caused[0].event.type).toBe("test.concluded");
      expect(child.caused[0].event.causationid).toBe(child.event.id);
      expect(child.caused[0].caused).toEqual([]);
    }
    // Every event in the tree shares the root's correlation id.
    expect(new Set(concluded.map((e) => e.correlationid))).toEqual(new Set([root.correlationid]));
  });

  it("answers 404 for an unknown event and 400 for a malformed id", async () => {
    expect((await call("GET", `/api/v1/events/${crypto.randomUUID()}/lineage`, admin)).status).toBe(404);
    const bad = await call("GET", "/api/v1/events/not-a-uuid/lineage", admin);
    expect(bad.status).toBe(400);
    expect(bad.type).toBe("application/problem+json");
  });
});

describe("event queries", () => {
  it("filters by type, source, subject, correlation and time, one page at a time", async () => {
    await t.append(Array.from({ length: 5 }, (_, i) => t.happened(100 + i, "query-subject")));
    // An event shows once every older transaction has ended (the cluster is shared with other tests).
    const all = await eventually(async () => {
      const r = await call("GET", "/api/v1/events?subject=query-subject", admin);
      return r.body.items.length === 5 && r;
    });
    expect(all.body.nextCursor).toBeNull();
    const [first] = all.body.items as EventEnvelope[];
    const page1 = await call("GET", "/api/v1/events?subject=query-subject&limit=2", admin);
    expect(page1.body.items.map((e: EventEnvelope) => (e.data as { n: number }).n)).toEqual([100, 101]);
    expect(page1.body.nextCursor).toEqual(expect.any(String));
    const page2 = await call("GET", `/api/v1/events?subject=query-subject&limit=2&cursor=${page1.body.nextCursor}`, admin);
    expect(page2.body.items.map((e: EventEnvelope) => (e.data as { n: number }).n)).toEqual([102, 103]);
    const page3 = await call("GET", `/api/v1/events?subject=query-subject&limit=2&cursor=${page2.body.nextCursor}`, admin);
    expect(page3.body).toEqual({ items: [expect.objectContaining({ data: { n: 104 } })], nextCursor: null });
    const byCorrelation = await call("GET", `/api/v1/events?correlationId=${first!.correlationid}`, admin);
    expect(byCorrelation.body.items).toHaveLength(5);
    expect((await call("GET", "/api/v1/events?source=nobody", admin)).body).toEqual({ items: [], nextCursor: null });
    const future = new Date(Date.now() + 60_000).toISOString();
    expect((await call("GET", `/api/v1/events?subject=query-subject&from=${future}`, admin)).body.items).toEqual([]);
    expect((await call("GET", `/api/v1/events?subject=query-subject&to=${future}`, admin)).body.items).toHaveLength(5);
    expect((await call("GET", "/api/v1/events?limit=0", admin)).status).toBe(400);
    expect((await call("GET", "/api/v1/events?limit=101", admin)).status).toBe(400);
    expect((await call("GET", "/api/v1/events?from=yesterday", admin)).status).toBe(400);
  });

  it("is for admins only", async () => {
    expect((await call("GET", "/api/v1/events", user)).status).toBe(403);
    expect((await call("GET", "/api/v1/events", undefined)).status).toBe(401);
  });
});

describe("hostile input", () => {
  it("answers positions beyond the bigint range and malformed bodies with 400, never 500", async () => {
    const cases: [string, string, unknown?][] = [
      ["GET", "/api/v1/events?cursor=not-a-cursor"],
      ["GET", `/api/v1/events?cursor=${Buffer.from(JSON.stringify(["99999999999999999999", "1"])).toString("base64url")}`],
      ["GET", "/api/v1/events?from=2026-13-45T00:00:00Z"],
      ["POST", "/api/v1/admin/subscriptions/testing.follow/replay", { from: "9999999999999999999" }],
      ["POST", "/api/v1/admin/subscriptions/testing.follow/replay", { from: 1e30 }],
      ["POST", "/api/v1/admin/subscriptions/testing.follow/replay", {}],
      ["POST", "/api/v1/admin/events/test-pattern", { pattern: {}, event: "not an object" }],
      ["GET", "/api/v1/admin/dead-letters?status=bogus"],
    ];
    for (const [method, path, json] of cases) {
      const res = await call(method, path, admin, json);
      expect([method, path, res.status, res.type]).toEqual([method, path, 400, "application/problem+json"]);
    }
  });
});

describe("deeply nested events", () => {
  it("answers test-pattern for an event nested 50,000 levels deep with 400, not a stack overflow", async () => {
    const body = `{"pattern":{"a":[1]},"event":{"a":${"[".repeat(50_000)}1${"]".repeat(50_000)}}}`;
    const res = await app.request("/api/v1/admin/events/test-pattern", {
      method: "POST",
      headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
      body,
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { code: string }).code).toBe("EVENTS.EVENT_TOO_DEEP");
    const shallow = `{"pattern":{"a":[1]},"event":{"a":${"[".repeat(50)}1${"]".repeat(50)}}}`;
    const ok = await app.request("/api/v1/admin/events/test-pattern", {
      method: "POST",
      headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
      body: shallow,
    });
    expect(await ok.json()).toEqual({ result: true });
  });
});

describe("catalog and schemas", () => {
  it("lists every declared type with its source, visibility, subscribers and schema link", async () => {
    const res = await call("GET", "/api/v1/events/catalog", user);
    expect(res.status).toBe(200);
    const byType = Object.fromEntries(res.body.types.map((x: { type: string }) => [x.type, x]));
    expect(byType["test.happened"]).toMatchObject({ source: "testing", visibility: "public", schema: "/api/v1/events/schemas/test.happened" });
    // Subscribers come from each subscription's `on`, whether or not a content pattern narrows it.
    expect(byType["test.happened"].subscribers).toEqual(["testing.follow", "testing.poison"]);
    expect(byType["test.followed"].subscribers).toEqual(["testing.conclude"]);
    expect(byType["test.concluded"]).toMatchObject({ visibility: "public", subscribers: [] });
    expect(byType["test.noted"]).toMatchObject({ visibility: "internal", subscribers: [] });
    const schema = await call("GET", "/api/v1/events/schemas/test.happened", user);
    expect(schema.body).toMatchObject({ title: "test.happened", type: "object", required: ["n"] });
    expect((await call("GET", "/api/v1/events/schemas/nope.never", user)).status).toBe(404);
  });
});

describe("test-pattern", () => {
  const cases: [string, Record<string, unknown>, Record<string, unknown>, boolean][] = [
    ["exact", { source: ["orders"] }, { source: "orders" }, true],
    ["prefix", { type: [{ prefix: "order." }] }, { type: "order.created" }, true],
    ["suffix miss", { type: [{ suffix: ".cancelled" }] }, { type: "order.created" }, false],
    ["anything-but", { detail: { state: [{ "anything-but": ["shipped"] }] } }, { detail: { state: "pending" } }, true],
    ["numeric", { detail: { total: [{ numeric: [">=", 100, "<", 200] }] } }, { detail: { total: 150 } }, true],
    ["numeric miss", { detail: { total: [{ numeric: [">", 200] }] } }, { detail: { total: 150 } }, false],
    ["exists false", { detail: { coupon: [{ exists: false }] } }, { detail: {} }, true],
    ["cidr v4", { detail: { ip: [{ cidr: "10.0.0.0/8" }] } }, { detail: { ip: "10.1.2.3" } }, true],
    ["cidr v6", { detail: { ip: [{ cidr: "2001:db8::/32" }] } }, { detail: { ip: "2001:db8::1" } }, true],
    ["ignore case", { detail: { c: [{ "equals-ignore-case": "eur" }] } }, { detail: { c: "EUR" } }, true],
    ["wildcard", { detail: { p: [{ wildcard: "a/*/c" }] } }, { detail: { p: "a/b/c" } }, true],
    ["$or", { $or: [{ a: [1] }, { b: [2] }] }, { b: 2 }, true],
    ["array in event", { tags: ["x"] }, { tags: ["y", "x"] }, true],
    ["null", { v: [null] }, { v: null }, true],
  ];
  for (const [name, pattern, event, result] of cases) {
    it(`answers ${result} for ${name}`, async () => {
      const res = await call("POST", "/api/v1/admin/events/test-pattern", admin, { pattern, event });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ result });
    });
  }

  it("rejects an invalid pattern with a 400 problem naming the path", async () => {
    const res = await call("POST", "/api/v1/admin/events/test-pattern", admin, { pattern: { detail: { n: [{ numeric: ["<", 1, ">", 5] }] } }, event: {} });
    expect(res.status).toBe(400);
    expect(res.type).toBe("application/problem+json");
    expect(res.body.code).toBe("EVENTS.INVALID_PATTERN");
    expect(res.body.errors[0].path).toContain("detail.n");
    const notArray = await call("POST", "/api/v1/admin/events/test-pattern", admin, { pattern: { source: "orders" }, event: {} });
    expect(notArray.status).toBe(400);
  });

  it("is for admins only", async () => {
    expect((await call("POST", "/api/v1/admin/events/test-pattern", user, { pattern: {}, event: {} })).status).toBe(403);
  });

  it("answers the issue's two hostile bodies within a second, refused as too large, while /health keeps answering", async () => {
    // Issue 11: a 150 KB body whose 50,000-character ignore-case suffix meets a 100,000-character value, and
    // 12,000 $or branches against a 12,000-element array; both used to hold the process for seconds.
    const suffix = {
      pattern: { detail: { name: [{ suffix: { "equals-ignore-case": "Ab".repeat(25_000) } }] } },
      event: { detail: { name: "a".repeat(100_000) } },
    };
    const branches = {
      pattern: { $or: Array.from({ length: 12_000 }, (_, i) => ({ tags: [`t${i}`] })) },
      event: { tags: Array.from({ length: 12_000 }, (_, i) => `u${i}`) },
    };
    let done = false;
    let slowestHealth = 0;
    let healthAnswers = 0;
    const probe = (async () => {
      while (!done) {
        const started = performance.now();
        const res = await app.request("/health");
        expect(res.status).toBe(200);
        slowestHealth = Math.max(slowestHealth, performance.now() - started);
        healthAnswers++;
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    const timedCall = async (json: unknown) => {
      const started = performance.now();
      const res = await call("POST", "/api/v1/admin/events/test-pattern", admin, json);
      return { ...res, ms: performance.now() - started };
    };
    const [a, b] = await Promise.all([timedCall(suffix), timedCall(branches)]);
    done = true;
    await probe;
    for (const res of [a, b]) {
      expect(res.ms).toBeLessThan(1000);
      expect([res.status, res.type, res.body.code]).toEqual([400, "application/problem+json", "EVENTS.PATTERN_TOO_COMPLEX"]);
      expect(res.body.detail).toContain("EventBridge allows at most 2048");
    }
    expect(healthAnswers).toBeGreaterThan(0);
    expect(slowestHealth).toBeLessThan(1000);
  });

  it("matches the largest allowed ignore-case suffix against a 200,000-character value within a second", async () => {
    const started = performance.now();
    const res = await call("POST", "/api/v1/admin/events/test-pattern", admin, {
      pattern: { detail: { name: [{ suffix: { "equals-ignore-case": "Ab".repeat(990) } }] } },
      event: { detail: { name: `${"a".repeat(200_000)}${"aB".repeat(990)}` } },
    });
    expect(performance.now() - started).toBeLessThan(1000);
    expect([res.status, res.body]).toEqual([200, { result: true }]);
  });

  it("refuses an event over 256 KB and a wildcard AWS finds too complex, each with a 400 problem", async () => {
    const big = await call("POST", "/api/v1/admin/events/test-pattern", admin, { pattern: { a: ["x"] }, event: { a: "x".repeat(300_000) } });
    expect([big.status, big.type, big.body.code]).toEqual([400, "application/problem+json", "EVENTS.EVENT_TOO_LARGE"]);
    expect(big.body.detail).toContain("256 KB");
    const complex = await call("POST", "/api/v1/admin/events/test-pattern", admin, { pattern: { arn: [{ wildcard: "*:*:*:*:*:event-bus/*" }] }, event: {} });
    expect([complex.status, complex.body.code]).toEqual([400, "EVENTS.PATTERN_TOO_COMPLEX"]);
    expect(complex.body.errors[0].path).toBe("pattern.arn");
  });
});

describe("subscriptions and dead letters", () => {
  it("lists partitions with checkpoint and lag, pauses, resumes and replays", async () => {
    const list = await call("GET", "/api/v1/admin/subscriptions", admin);
    expect(list.status).toBe(200);
    const names = list.body.subscriptions.map((s: { name: string }) => s.name);
    expect(names).toEqual(expect.arrayContaining(["testing.follow", "testing.conclude", "testing.poison"]));
    // This server is the one live process running them, and it holds their leases.
    const follow = list.body.subscriptions.find((s: { name: string }) => s.name === "testing.follow");
    expect(follow).toMatchObject({ hostedHere: true, members: [t.outbox.processId], leaseOwner: t.outbox.processId, status: "active" });
    expect(list.body.sinks).toEqual([
      expect.objectContaining({ name: "outbox.eventbridge", enabled: false }),
      expect.objectContaining({ name: "outbox.kinesis", enabled: false }),
    ]);

    expect((await call("POST", "/api/v1/admin/subscriptions/testing.conclude/pause", admin)).body).toEqual({ name: "testing.conclude", status: "paused" });
    await t.append([t.happened(500, "paused-subject", "chain")]);
    // testing.follow still runs and appends two test.followed; the paused one lags by them.
    const lagging = await eventually(async () => {
      const s = (await call("GET", "/api/v1/admin/subscriptions", admin)).body.subscriptions.find((x: { name: string }) => x.name === "testing.conclude");
      return s.lag.events === 2 && s;
    });
    expect(lagging.status).toBe("paused");
    expect(lagging.lag.seconds).toBeGreaterThanOrEqual(0);
    await call("POST", "/api/v1/admin/subscriptions/testing.conclude/resume", admin);
    await eventually(async () => {
      const s = (await call("GET", "/api/v1/admin/subscriptions", admin)).body.subscriptions.find((x: { name: string }) => x.name === "testing.conclude");
      return s.lag.events === 0 && s.status === "active";
    });
    expect((await call("POST", "/api/v1/admin/subscriptions/nope.nope/pause", admin)).status).toBe(404);
  });

  it("replays a subscription from a position through the API", async () => {
    const before = (await call("GET", "/api/v1/events?type=test.concluded&limit=100", admin)).body.items.length;
    const follows = await eventually(async () => {
      const items = (await call("GET", "/api/v1/events?type=test.followed&subject=paused-subject", admin)).body.items as EventEnvelope[];
      return items.length === 2 && items;
    });
    const res = await call("POST", "/api/v1/admin/subscriptions/testing.conclude/replay", admin, { from: Number(follows[0]!.sequence) });
    expect(res.status).toBe(200);
    expect(res.body.fromPosition).toBe(follows[0]!.sequence);
    // Replaying re-runs the handler, which appends new conclusions for the two follows (and any later ones).
    await eventually(async () => (await call("GET", "/api/v1/events?type=test.concluded&limit=100", admin)).body.items.length >= before + 2);
    expect((await call("POST", "/api/v1/admin/subscriptions/testing.conclude/replay", admin, { from: "last tuesday" })).status).toBe(400);
  });

  it("lists, redrives and discards dead letters", async () => {
    await t.append([t.happened(900, "poison-subject", "poison"), t.happened(901, "poison-subject-2", "poison")]);
    const dls = await eventually(async () => {
      const r = await call("GET", "/api/v1/admin/dead-letters?subscription=testing.poison", admin);
      return r.body.items.length === 2 && r.body.items;
    });
    expect(dls[0]).toMatchObject({ subscription: "testing.poison", status: "dead", attempts: 2 });
    expect(dls[0].error).toContain("poison pill");
    const [a, b] = dls;
    poisonFixed = true;
    const redrive = await call("POST", `/api/v1/admin/dead-letters/${a.id}/redrive`, admin);
    expect(redrive.status).toBe(202);
    await eventually(async () => (await t.effects()).filter((r) => r.worker === "poison").length === 1);
    const after = (await call("GET", "/api/v1/admin/dead-letters?status=redriven", admin)).body.items;
    expect(after.map((d: { id: string }) => d.id)).toEqual([a.id]);
    expect((await call("DELETE", `/api/v1/admin/dead-letters/${b.id}`, admin)).status).toBe(204);
    expect((await call("DELETE", `/api/v1/admin/dead-letters/${b.id}`, admin)).status).toBe(404);
    expect((await call("POST", `/api/v1/admin/dead-letters/${crypto.randomUUID()}/redrive`, admin)).status).toBe(404);
    expect((await call("GET", "/api/v1/admin/dead-letters", user)).status).toBe(403);
  });
});

describe("metrics", () => {
  it("exposes processed, failure, dead-letter, duration, lag, lease and member series per subscription", async () => {
    const res = await app.request("/metrics");
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/outbox_events_processed_total\{subscription="testing.follow",partition="0"\} [1-9]/);
    expect(text).toMatch(/outbox_handler_failures_total\{subscription="testing.poison",partition="0"\} [1-9]/);
    expect(text).toMatch(/outbox_dead_letters_total\{subscription="testing.poison"\} 2/);
    expect(text).toMatch(/outbox_handler_duration_seconds_count\{subscription="testing.conclude"\} [1-9]/);
    expect(text).toMatch(/outbox_subscription_lag_events\{subscription="testing.conclude",partition="0"\} 0/);
    expect(text).toMatch(/outbox_subscription_partition_held\{subscription="testing.follow",partition="0"\} 1/);
    expect(text).toMatch(/outbox_subscription_members\{subscription="testing.follow"\} 1/);
  });
});

describe("event context from HTTP", () => {
  it("stamps events appended during a request with its correlation id and the caller as actor", async () => {
    const id = crypto.randomUUID();
    const token = (await auth.issue({ id, role: "user", username: "actor" })).accessToken;
    const res = await app.request("/api/v1/testing/happen", { method: "POST", headers: { authorization: `Bearer ${token}`, "x-correlation-id": "trace-42" } });
    expect(res.status).toBe(204);
    const [row] = await t.database.sql`select correlation_id, actor_id, causation_id from outbox.events where subject = 'from-http'`;
    expect(row).toEqual({ correlation_id: "trace-42", actor_id: id, causation_id: null });
  });
});
