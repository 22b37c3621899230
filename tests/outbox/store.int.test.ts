import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import pino from "pino";
import { sql } from "drizzle-orm";
import { createOutbox, InvalidSubscriptionError, runWithEventContext, StreamVersionConflictError } from "../../outbox/index.ts";
import { isUniqueViolation } from "../../outbox/store.ts";
import { InvalidEventDataError, UnknownEventTypeError } from "../../src/events/registry.ts";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { eventually } from "../support/eventually.ts";
import { startTestOutbox, type TestOutbox } from "../support/outbox.ts";

let tdb: TestDatabase;
let t: TestOutbox;

beforeAll(async () => {
  tdb = await createTestDatabase();
  t = await startTestOutbox(tdb.url, [], { start: false });
});
afterAll(async () => {
  await t.close();
  await tdb.drop();
});

describe("append", () => {
  it("is write-behind: later statements see the event, and a failed insert fails the whole transaction with its own error", async () => {
    const id = crypto.randomUUID();
    const seen = await t.database.db.transaction(async (tx) => {
      await t.outbox.appender.append(tx, [{ ...t.happened(1, "behind"), id }]);
      const [row] = await tx.execute(sql`select count(*)::int as n from outbox.events where id = ${id}::uuid`);
      return (row as { n: number }).n;
    });
    expect(seen).toBe(1);
    // The same id again: the insert fails at commit time, and so does the domain write beside it.
    const err = await t.database.db
      .transaction(async (tx) => {
        await tx.execute(sql`create table if not exists public.domain_rows (note text)`);
        await tx.execute(sql`insert into public.domain_rows values ('lost')`);
        await t.outbox.appender.append(tx, [{ ...t.happened(2, "behind"), id }]);
      })
      .catch((e: unknown) => e);
    expect(isUniqueViolation(err, "events_id_key")).toBe(true);
    const [left] = await t.database.sql`select to_regclass('public.domain_rows') as t, (select count(*)::int from outbox.events where subject = 'behind') as n`;
    expect(left).toEqual({ t: null, n: 1 });
  });

  it("refuses a type no module declared, and data that breaks the declared schema", async () => {
    await expect(t.append([{ type: "nobody.declared", subject: "x", data: {} }])).rejects.toBeInstanceOf(UnknownEventTypeError);
    await expect(t.append([{ type: "test.happened", subject: "x", data: { n: "one" } }])).rejects.toBeInstanceOf(InvalidEventDataError);
    const [row] = await t.database.sql`select count(*)::int as count from outbox.events where subject = 'x'`;
    expect(row!.count).toBe(0);
  });

  it("writes a whole batch in one statement with the ambient correlation, causation and actor", async () => {
    const correlationId = "corr-123";
    const causationId = crypto.randomUUID();
    const envs = await runWithEventContext({ correlationId, causationId, actorId: "user-9" }, () =>
      t.database.db.transaction((tx) => t.outbox.appender.append(tx, Array.from({ length: 500 }, (_, i) => t.happened(i, "batch")))),
    );
    expect(envs).toHaveLength(500);
    expect(envs[0]).toMatchObject({ specversion: "1.0", source: "testing", correlationid: correlationId, causationid: causationId, actorid: "user-9" });
    expect(envs[0]!.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-/);
    const rows = await t.database.sql`
      select count(*)::int as n, count(distinct transaction_id)::int as txs, min(position) as lo, max(position) as hi
        from outbox.events where subject = 'batch' and correlation_id = ${correlationId} and actor_id = 'user-9'`;
    expect(rows[0]).toMatchObject({ n: 500, txs: 1 });
    expect(Number(rows[0]!.hi) - Number(rows[0]!.lo)).toBe(499);
  });

  it("rolls the events back with the transaction that appended them", async () => {
    await expect(
      t.database.db.transaction(async (tx) => {
        await t.outbox.appender.append(tx, [t.happened(1, "rolled-back")]);
        throw new Error("abort");
      }),
    ).rejects.toThrow("abort");
    const [row] = await t.database.sql`select count(*)::int as count from outbox.events where subject = 'rolled-back'`;
    expect(row!.count).toBe(0);
  });
});

describe("appendToStream", () => {
  it("appends with versions and reads the stream back in order", async () => {
    const db = t.database.db;
    await db.transaction((tx) => t.outbox.appender.appendToStream(tx, "order-1", 0, [t.happened(1, "order-1"), t.happened(2, "order-1")]));
    await db.transaction((tx) => t.outbox.appender.appendToStream(tx, "order-1", 2, [t.happened(3, "order-1")]));
    const stream = await db.transaction((tx) => t.outbox.appender.readStream(tx, "order-1"));
    expect(stream.map((e) => [e.version, (e.data as { n: number }).n])).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
    ]);
  });

  it("raises a concurrency conflict for a stale expected version", async () => {
    const db = t.database.db;
    const err = await db.transaction((tx) => t.outbox.appender.appendToStream(tx, "order-1", 1, [t.happened(9, "order-1")])).catch((e) => e);
    expect(err).toBeInstanceOf(StreamVersionConflictError);
    expect(err).toMatchObject({ kind: "conflict", code: "EVENTS.CONCURRENCY_CONFLICT" });
  });

  it("lets exactly one of many concurrent writers win at the same expected version", async () => {
    const db = t.database.db;
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) =>
        db.transaction(async (tx) => {
          const out = await t.outbox.appender.appendToStream(tx, "order-race", 0, [t.happened(i, "order-race")]);
          await Bun.sleep(20);
          return out;
        }),
      ),
    );
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const rejected = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    expect(rejected).toHaveLength(7);
    for (const r of rejected) expect(r.reason).toBeInstanceOf(StreamVersionConflictError);
    const stream = await db.transaction((tx) => t.outbox.appender.readStream(tx, "order-race"));
    expect(stream.map((e) => e.version)).toEqual([1]);
  });
});

describe("subscription declarations", () => {
  const make = () => createOutbox({ database: t.database, registry: t.outbox.registry, log: pino({ level: "silent" }) });

  it("rejects an invalid pattern at declaration, naming the subscription and the path", () => {
    expect(() => make().subscribe([{ name: "testing.bad", pattern: { type: "test.happened" }, handler: async () => {} }])).toThrow(
      /subscription testing.bad: invalid pattern: type/,
    );
    expect(() => make().subscribe([{ name: "testing.bad", pattern: { n: [{ numeric: [">", "x"] }] }, handler: async () => {} }])).toThrow(InvalidSubscriptionError);
  });

  it("holds a pattern declared in code to EventBridge's limits", () => {
    const huge = { $or: Array.from({ length: 12_000 }, (_, i) => ({ tags: [`t${i}`] })) };
    expect(() => make().subscribe([{ name: "testing.huge", pattern: huge, handler: async () => {} }])).toThrow(/testing.huge: invalid pattern: .*at most 2048/);
    const complex = { arn: [{ wildcard: "*:*:*:*:*:event-bus/*" }] };
    expect(() => make().subscribe([{ name: "testing.complex", pattern: complex, handler: async () => {} }])).toThrow(/too complex/);
  });

  it("rejects bad names, duplicates, and handler/batchHandler mistakes", () => {
    const ok = { pattern: {}, handler: async () => {} };
    expect(() => make().subscribe([{ name: "NoDot", ...ok }])).toThrow(InvalidSubscriptionError);
    expect(() => make().subscribe([{ name: "testing.same", ...ok }, { name: "testing.same", ...ok }])).toThrow(/declared twice/);
    expect(() => make().subscribe([{ name: "testing.none", pattern: {} }])).toThrow(/exactly one of handler, handleBatch or batchHandler/);
    expect(() => make().subscribe([{ name: "testing.two", pattern: {}, handler: async () => {}, handleBatch: async () => {} }])).toThrow(/exactly one/);
    expect(() => make().subscribe([{ name: "testing.parts", partitions: 0, ...ok }])).toThrow(/partitions/);
  });

  it("refuses to start when the partition count changed under an existing subscription", async () => {
    const a = make();
    a.subscribe([{ name: "testing.parted", partitions: 2, pattern: {}, handler: async () => {} }]);
    await a.start();
    await a.stop();
    const b = make();
    b.subscribe([{ name: "testing.parted", partitions: 3, pattern: {}, handler: async () => {} }]);
    await expect(b.start()).rejects.toThrow(/2 partitions in the database but 3 in code/);
    await b.stop();
  });
});

describe("cross-process wake-up", () => {
  it("wakes a worker in another process through NOTIFY long before its poll interval", async () => {
    await t.database.sql.unsafe("truncate public.effects");
    const child = Bun.spawn(["bun", "tests/support/worker-child.ts"], {
      env: { ...process.env, DB_URL: tdb.url, WORKER: "listener", POLL_MS: "30000" },
      stdout: "pipe",
      stderr: "inherit",
    });
    try {
      const reader = child.stdout.getReader();
      let out = "";
      while (!out.includes("ready")) out += new TextDecoder().decode((await reader.read()).value);
      // Let the child drain the backlog of earlier tests' events before timing.
      await eventually(async () => {
        const [r] = await t.database.sql`select lag from (select count(*) filter (where true) as lag from outbox.events e, outbox.subscriptions s
          where s.name = 'testing.multi' and (e.transaction_id, e.position) > (s.last_transaction_id, s.last_position) and e.type = 'test.happened') x`;
        return Number(r!.lag) === 0;
      }, 10_000);
      const t0 = performance.now();
      await t.append([t.happened(424242, "wake-me")]);
      await eventually(async () => (await t.effects()).some((r) => r.n === 424242), 5000, 5);
      expect(performance.now() - t0).toBeLessThan(2000);
    } finally {
      child.kill("SIGKILL");
      await child.exited;
    }
  });
});
