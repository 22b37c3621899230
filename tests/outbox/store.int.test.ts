import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { sql } from "drizzle-orm";
import pino from "pino";
import { z } from "zod";
import {
  createOutbox,
  defineSubscription,
  InvalidSubscriptionError,
  runWithEventContext,
  StreamVersionConflictError,
  type SubscriptionDefinition,
  UnexpectedStreamEventError,
} from "../../outbox/index.ts";
import { isUniqueViolation } from "../../outbox/store.ts";
import { defineEvent } from "../../src/events/definition.ts";
import { InvalidEventDataError, UnknownEventTypeError } from "../../src/events/registry.ts";
import { defineModule } from "../../src/modules.ts";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { eventually } from "../support/eventually.ts";
import { startTestOutbox, TestFollowed, TestHappened, TestNoted, type TestOutbox } from "../support/outbox.ts";

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
    const Undeclared = defineEvent({
      source: "nobody",
      type: "nobody.declared",
      visibility: "public",
      description: "In no module's events",
      schema: z.object({}),
    });
    await expect(t.append([Undeclared.with({}, { subject: "x" })])).rejects.toBeInstanceOf(UnknownEventTypeError);
    // The compiler refuses this data; a cast (or a JavaScript caller) still meets the schema at append.
    await expect(t.append([TestHappened.with({ n: "one" } as never, { subject: "x" })])).rejects.toBeInstanceOf(InvalidEventDataError);
    const [row] = await t.database.sql`select count(*)::int as count from outbox.events where subject = 'x'`;
    expect(row!.count).toBe(0);
  });

  it("writes a whole batch in one statement with the ambient correlation, causation and actor", async () => {
    const correlationId = "corr-123";
    const causationId = crypto.randomUUID();
    const envs = await runWithEventContext({ correlationId, causationId, actorId: "user-9" }, () =>
      t.database.db.transaction((tx) =>
        t.outbox.appender.append(
          tx,
          Array.from({ length: 500 }, (_, i) => t.happened(i, "batch")),
        ),
      ),
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

  it("reads a stream typed by the definitions it may hold, and refuses one holding another type", async () => {
    const db = t.database.db;
    await db.transaction((tx) =>
      t.outbox.appender.appendToStream(tx, "typed-1", 0, [
        TestHappened.with({ n: 1 }, { subject: "typed-1" }),
        TestNoted.with({ n: 2 }, { subject: "typed-1" }),
      ]),
    );
    const events = await db.transaction((tx) => t.outbox.appender.readStream(tx, "typed-1", [TestHappened, TestNoted]));
    expect(events.map((e) => [e.version, e.type, e.data.n])).toEqual([
      [1, "test.happened", 1],
      [2, "test.noted", 2],
    ]);
    const err = await db.transaction((tx) => t.outbox.appender.readStream(tx, "typed-1", [TestHappened])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnexpectedStreamEventError);
    expect(String(err)).toContain('stream typed-1 holds "test.noted" at version 2');
  });

  it("appends the events given alongside in the same insert, outside the stream, made from the stream's events as stored", async () => {
    const db = t.database.db;
    const seen: number[] = [];
    const out = await db.transaction((tx) =>
      t.outbox.appender.appendToStream(tx, "along-1", 0, [t.happened(1, "along-1"), t.happened(2, "along-1")], {
        alongside: (appended) => {
          seen.push(...appended.map((e) => (e.data as { n: number }).n));
          return [TestNoted.with({ n: 3 }, { subject: "along-1" })];
        },
      }),
    );
    expect(seen).toEqual([1, 2]);
    expect(out.map((e) => e.type)).toEqual(["test.happened", "test.happened"]);
    const rows = (await db.execute(sql`
      select type, stream_id, stream_version, transaction_id::text as xid from outbox.events where subject = 'along-1' order by position`)) as unknown as {
      type: string;
      stream_id: string | null;
      stream_version: number | null;
      xid: string;
    }[];
    expect(rows.map((r) => [r.type, r.stream_id, r.stream_version])).toEqual([
      ["test.happened", "along-1", 1],
      ["test.happened", "along-1", 2],
      ["test.noted", null, null],
    ]);
    expect(new Set(rows.map((r) => r.xid)).size).toBe(1);
    const stream = await db.transaction((tx) => t.outbox.appender.readStream(tx, "along-1"));
    expect(stream.map((e) => e.version)).toEqual([1, 2]);
    // A conflict still reads as one, and takes the events alongside down with it.
    const err = await db
      .transaction((tx) =>
        t.outbox.appender.appendToStream(tx, "along-1", 1, [t.happened(9, "along-1")], {
          versionRead: true,
          writeBehind: true,
          alongside: () => [TestNoted.with({ n: 10 }, { subject: "along-1" })],
        }),
      )
      .catch((e) => e);
    expect(err).toBeInstanceOf(StreamVersionConflictError);
    const [after] = (await db.execute(sql`select count(*)::int as n from outbox.events where subject = 'along-1'`)) as unknown as { n: number }[];
    expect(after!.n).toBe(3);
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

  // Mistakes the compiler catches in TypeScript still fail at declaration for a cast or a JavaScript caller.
  const untyped = (def: object) => def as SubscriptionDefinition;

  it("rejects an invalid pattern at declaration, naming the subscription and the path", () => {
    expect(() => make().subscribe([{ name: "testing.bad", on: [TestHappened], pattern: { type: "test.happened" }, handler: async () => {} }])).toThrow(
      /subscription testing.bad: invalid pattern: type/,
    );
    expect(() => make().subscribe([{ name: "testing.bad", on: [TestHappened], pattern: { n: [{ numeric: [">", "x"] }] }, handler: async () => {} }])).toThrow(
      InvalidSubscriptionError,
    );
  });

  it("holds a pattern declared in code to EventBridge's limits", () => {
    const huge = { $or: Array.from({ length: 12_000 }, (_, i) => ({ tags: [`t${i}`] })) };
    expect(() => make().subscribe([{ name: "testing.huge", on: [TestHappened], pattern: huge, handler: async () => {} }])).toThrow(
      /testing.huge: invalid pattern: .*at most 2048/,
    );
    const complex = { arn: [{ wildcard: "*:*:*:*:*:event-bus/*" }] };
    expect(() => make().subscribe([{ name: "testing.complex", on: [TestHappened], pattern: complex, handler: async () => {} }])).toThrow(/too complex/);
  });

  it("rejects bad names, duplicates, and handler/batchHandler mistakes", () => {
    const ok = { on: [TestHappened], handler: async () => {} };
    expect(() => make().subscribe([{ name: "NoDot", ...ok }])).toThrow(InvalidSubscriptionError);
    expect(() =>
      make().subscribe([
        { name: "testing.same", ...ok },
        { name: "testing.same", ...ok },
      ]),
    ).toThrow(/declared twice/);
    expect(() => make().subscribe([untyped({ name: "testing.none", on: [TestHappened] })])).toThrow(/exactly one of handler, handleBatch or batchHandler/);
    expect(() => make().subscribe([untyped({ name: "testing.two", on: [TestHappened], handler: async () => {}, handleBatch: async () => {} })])).toThrow(
      /exactly one/,
    );
    expect(() => make().subscribe([{ name: "testing.parts", partitions: 0, ...ok }])).toThrow(/partitions/);
  });

  it("takes its events from `on`: required for handlers, registered definitions only, and a pattern may only narrow them", () => {
    expect(() => make().subscribe([untyped({ name: "testing.untyped", handler: async () => {} })])).toThrow(/name the events it consumes in `on`/);
    expect(() => make().subscribe([untyped({ name: "testing.empty", on: [], handleBatch: async () => {} })])).toThrow(/at least one/);
    const Stranger = defineEvent({ source: "testing", type: "test.unlisted", visibility: "public", description: "Not registered", schema: z.object({}) });
    expect(() => make().subscribe([{ name: "testing.stranger", on: [Stranger], handler: async () => {} }])).toThrow(
      /consumes "test.unlisted", which is not a registered definition/,
    );
    // A pattern naming a type outside `on` is refused where it is declared, not found out at run time.
    const wider = { name: "testing.wider", on: [TestHappened], pattern: { type: ["test.happened", "test.followed"] }, handler: async () => {} };
    expect(() => defineSubscription(wider)).toThrow(/pattern names "test.followed", which `on` does not list/);
    expect(() => make().subscribe([wider])).toThrow(/pattern names "test.followed"/);

    const outbox = make();
    outbox.subscribe([
      { name: "testing.both", on: [TestHappened, TestFollowed], handler: async () => {} },
      { name: "testing.narrowed", on: [TestHappened, TestFollowed], pattern: { type: ["test.followed"], data: { n: [1] } }, handler: async () => {} },
      { name: "testing.relay", batchHandler: async () => {} },
    ]);
    const filter = Object.fromEntries(outbox.subscriptions().map((s) => [s.name, s.matcher.types]));
    // The SQL type filter: the types in `on`, narrowed by the pattern, and every public type for a relay.
    expect(filter).toEqual({
      "testing.both": ["test.followed", "test.happened"],
      "testing.narrowed": ["test.followed"],
      "testing.relay": ["test.concluded", "test.followed", "test.happened"],
    });
    const [, narrowed, relay] = outbox.subscriptions();
    const envelope = (type: string, n: number) => ({ specversion: "1.0", type, source: "testing", subject: "s", data: { n } });
    expect([narrowed!.matcher.matches(envelope("test.followed", 1)), narrowed!.matcher.matches(envelope("test.followed", 2))]).toEqual([true, false]);
    expect([relay!.matcher.matches(envelope("test.happened", 1)), relay!.matcher.matches(envelope("test.noted", 1))]).toEqual([true, false]);
  });

  it("lets a module consume another module's public events and its own internal ones, but not another's internal ones", () => {
    const define = (name: string) =>
      defineModule({ name, events: [], api: {}, subscriptions: [{ name: `${name}.react`, on: [TestHappened, TestNoted], handler: async () => {} }] });
    expect(() => define("testing")).not.toThrow();
    expect(() => define("elsewhere")).toThrow(/elsewhere.react consumes test.noted, an internal event of module testing/);
  });

  it("refuses to start when the partition count changed under an existing subscription", async () => {
    const a = make();
    a.subscribe([{ name: "testing.parted", partitions: 2, on: [TestHappened], handler: async () => {} }]);
    await a.start();
    await a.stop();
    const b = make();
    b.subscribe([{ name: "testing.parted", partitions: 3, on: [TestHappened], handler: async () => {} }]);
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
