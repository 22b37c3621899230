import { describe, expect, it } from "bun:test";
import { replay } from "../../outbox/admin.ts";
import type { EventEnvelope } from "../../outbox/envelope.ts";
import { defineSubscription, type EventHandlerSubscription, type HandlerContext, runWithEventContext } from "../../outbox/index.ts";
import { rawSql } from "../../src/db/client.ts";
import { eventually } from "../support/eventually.ts";
import { outboxTestFile, recordEffect, TestFollowed, TestHappened, type TestOutbox } from "../support/outbox.ts";

const tdb = outboxTestFile();
let current: TestOutbox | undefined;

const effectsSub = (name: string, extra: Partial<Omit<EventHandlerSubscription<typeof TestHappened>, "name" | "on">> = {}) =>
  defineSubscription({
    name,
    on: [TestHappened],
    handler: (e, { tx }) => recordEffect(tx, e),
    ...extra,
  });

describe("delivery", () => {
  it("delivers every appended event once, in log order", async () => {
    current = await tdb.start([effectsSub("testing.record")]);
    await current.append(Array.from({ length: 250 }, (_, i) => current!.happened(i)));
    const rows = await eventually(async () => {
      const r = await current!.effects();
      return r.length === 250 && r;
    });
    expect(rows.map((r) => r.n)).toEqual(Array.from({ length: 250 }, (_, i) => i));
  });

  it("never skips an event whose transaction commits after a later one", async () => {
    current = await tdb.start([effectsSub("testing.record")]);
    const { db } = current.database;
    let releaseSlow!: () => void;
    const slowMayCommit = new Promise<void>((r) => (releaseSlow = r));
    let slowAppended!: () => void;
    const slowHasAppended = new Promise<void>((r) => (slowAppended = r));
    // The slow transaction takes position 1 first and commits last.
    const slow = db.transaction(async (tx) => {
      await current!.outbox.appender.append(tx, [current!.happened(1)]);
      await rawSql(tx)`select 1`; // the append is write-behind: its row is in once a later statement returns
      slowAppended();
      await slowMayCommit;
    });
    await slowHasAppended;
    await current.append([current.happened(2)]);
    await current.append([current.happened(3)]);
    // Give the worker every chance to run past the open transaction (it must not).
    current.outbox.wake();
    await Bun.sleep(300);
    const before = await current.effects();
    expect(before.map((r) => r.n)).toEqual([]);
    releaseSlow();
    await slow;
    const after = await eventually(async () => {
      const r = await current!.effects();
      return r.length === 3 && r;
    });
    expect(after.map((r) => r.n).sort()).toEqual([1, 2, 3]);
    await Bun.sleep(300);
    expect((await current.effects()).length).toBe(3);
  });

  it("commits nothing of a batch whose lease went to another process while it ran, and delivers it again", async () => {
    let calls = 0;
    current = await tdb.start([
      effectsSub("testing.record", {
        handler: async (e, { tx }) => {
          calls++;
          // The first time, another process takes the lease mid-batch (a zombie's batch): its
          // checkpoint row is not locked by the batch, so the update goes through at once.
          if (calls === 1) await current!.database.sql`update outbox.subscriptions set lease_owner = 'another-process' where name = 'testing.record'`;
          await recordEffect(tx, e);
        },
      }),
    ]);
    await current.append([current.happened(1)]);
    // The lease holder named in the row has no membership, so this process takes the lease back
    // and delivers the batch again: one effect, from the second delivery.
    const rows = await eventually(async () => {
      const r = await current!.effects();
      return r.length === 1 && r;
    });
    expect(rows.map((r) => r.n)).toEqual([1]);
    expect(calls).toBe(2);
    await Bun.sleep(200);
    expect((await current.effects()).length).toBe(1);
  });

  it("wakes a worker within milliseconds of a commit, without waiting for the poll", async () => {
    current = await tdb.start([effectsSub("testing.record")], { pollMs: 10_000 });
    await Bun.sleep(100);
    const t0 = performance.now();
    await current.append([current.happened(1)]);
    await eventually(async () => (await current!.effects()).length === 1, 2000, 2);
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it("filters by pattern beyond type, and still advances past events it ignores", async () => {
    current = await tdb.start([effectsSub("testing.even", { pattern: { type: ["test.happened"], data: { note: ["even"] } } })]);
    await current.append(Array.from({ length: 20 }, (_, i) => current!.happened(i, `s-${i}`, i % 2 === 0 ? "even" : "odd")));
    await eventually(async () => (await current!.effects()).length === 10);
    const [cp] = await current.database.sql`select last_position::int as p from outbox.subscriptions where name = 'testing.even'`;
    expect(cp!.p).toBe(20);
  });

  it("commits handler effects and checkpoint together when a handler throws mid-batch", async () => {
    let failures = 0;
    current = await tdb.start([
      effectsSub("testing.flaky", {
        handler: async (e, { tx }) => {
          await recordEffect(tx, e);
          if (e.data.n === 30 && failures < 2) {
            failures++;
            throw new Error("transient failure");
          }
        },
        backoff: { baseMs: 5, maxMs: 20 },
      }),
    ]);
    await current.append(Array.from({ length: 60 }, (_, i) => current!.happened(i)));
    const rows = await eventually(async () => {
      const r = await current!.effects();
      return r.length === 60 && r;
    });
    expect(failures).toBe(2);
    expect(new Set(rows.map((r) => r.event_id)).size).toBe(60);
    expect(rows.map((r) => r.n)).toEqual(Array.from({ length: 60 }, (_, i) => i));
  });

  it("starts a `now` subscription after the events already in the log", async () => {
    current = await tdb.start([], { start: false });
    await current.append([current.happened(1), current.happened(2)]);
    await current.close();
    current = await tdb.start([effectsSub("testing.from-now", { startFrom: "now" })]);
    await current.append([current.happened(3)]);
    await eventually(async () => (await current!.effects()).length === 1);
    await Bun.sleep(200);
    expect((await current.effects()).map((r) => r.n)).toEqual([3]);
  });

  it("charges a handler's failed append to the event whose handler made it, not to the next one", async () => {
    const taken = crypto.randomUUID();
    current = await tdb.start([
      defineSubscription({
        name: "testing.follow",
        on: [TestHappened],
        maxAttempts: 1,
        handler: async (e, { tx }) => {
          const n = e.data.n;
          // n=2 appends with an id already in the log: its (write-behind) insert fails.
          await current!.outbox.appender.append(tx, [TestFollowed.with({ n }, { subject: e.subject, id: n === 2 ? taken : undefined })]);
          await recordEffect(tx, e);
        },
      }),
    ]);
    await current.append([{ ...current.happened(0, "taken"), id: taken }]);
    await eventually(async () => (await current!.effects()).length === 1);
    await current.append([1, 2, 3].map((n) => current!.happened(n)));
    await eventually(async () => (await current!.effects()).length === 3);
    expect((await current.effects()).map((r) => r.n)).toEqual([0, 1, 3]);
    const dead = await current.database.sql<{ n: number; error: string }[]>`
      select (e.data->>'n')::int as n, d.error from outbox.dead_letters d join outbox.events e on e.position = d.event_position`;
    expect(dead).toHaveLength(1);
    expect(dead[0]!.n).toBe(2);
    expect(dead[0]!.error).toContain("events_id_key");
  });

  it("starts a `now` subscription exactly: skips what committed before it, even past an older open transaction, and delivers what was in flight", async () => {
    current = await tdb.start([], { start: false });
    const writer = current;
    await writer.append([writer.happened(0)]); // before anything: below the start
    // A transaction that appends, and stays open while the subscription is created.
    let commit!: () => void;
    const gate = new Promise<void>((resolve) => {
      commit = resolve;
    });
    let sent!: () => void;
    const inFlightSent = new Promise<void>((resolve) => {
      sent = resolve;
    });
    const inFlight = writer.database.db.transaction(async (tx) => {
      await writer.outbox.appender.append(tx, [writer.happened(100, "in-flight")]);
      await rawSql(tx)`select 1`;
      sent();
      await gate;
    });
    await inFlightSent;
    // Committed after the open transaction began (larger transaction ids) but before the start.
    await writer.append([writer.happened(1), writer.happened(2)]);
    const late = await tdb.start([effectsSub("testing.from-now-exact", { startFrom: "now" })]);
    try {
      await late.append([late.happened(3)]);
      commit();
      await inFlight;
      await eventually(async () => (await late.effects()).length === 2);
      await Bun.sleep(300);
      expect((await late.effects()).map((r) => r.n).sort((a, b) => a - b)).toEqual([3, 100]);
      const [cp] = await late.database.sql<
        { start_snapshot: string | null }[]
      >`select start_snapshot from outbox.subscriptions where name = 'testing.from-now-exact'`;
      expect(cp!.start_snapshot).toMatch(/^\d+:\d+:\d+/); // the open transaction was in flight at the start
      // A replay asks for history explicitly: it forgets the start, and the old events come too.
      const [first] = await late.database.sql<{ p: string }[]>`select min(position)::text as p from outbox.events`;
      await replay(late.database.db, "testing.from-now-exact", { position: first!.p });
      late.outbox.wake();
      await eventually(async () => (await late.effects()).length === 7);
      const [after] = await late.database.sql<
        { start_snapshot: string | null }[]
      >`select start_snapshot from outbox.subscriptions where name = 'testing.from-now-exact'`;
      expect(after!.start_snapshot).toBeNull();
      expect(
        (await late.effects())
          .slice(2)
          .map((r) => r.n)
          .sort((a, b) => a - b),
      ).toEqual([0, 1, 2, 3, 100]);
    } finally {
      await late.close();
    }
  });

  it("runs handlers with the event as causation, so appends inside them chain", async () => {
    current = await tdb.start([
      defineSubscription({
        name: "testing.follow",
        on: [TestHappened],
        handler: async (e, { tx }) => {
          await current!.outbox.appender.append(tx, [TestFollowed.with({ n: e.data.n }, { subject: e.subject })]);
        },
      }),
    ]);
    await current.append([current.happened(7)]);
    const [followed] = await eventually(async () => {
      const r = await current!.database.sql`select id, causation_id, correlation_id from outbox.events where type = 'test.followed'`;
      return r.length === 1 && r;
    });
    const [cause] = await current.database.sql`select id, correlation_id from outbox.events where type = 'test.happened'`;
    expect(followed!.causation_id).toBe(cause!.id);
    expect(followed!.correlation_id).toBe(cause!.correlation_id);
  });

  it("runs each delivery's transaction with generic plans (its statements are batched key lookups), and only that transaction", async () => {
    const seen: string[] = [];
    const mode = async (ctx: HandlerContext) => (await ctx.sql<{ m: string }[]>`select current_setting('plan_cache_mode') as m`)[0]!.m;
    current = await tdb.start([
      defineSubscription({ name: "testing.plans", on: [TestHappened], handler: async (_, ctx) => void seen.push(await mode(ctx)) }),
      defineSubscription({
        name: "testing.plans-quiet",
        on: [TestHappened],
        appends: false,
        handleBatch: async (_, ctx) => void seen.push(await mode(ctx)),
      }),
    ]);
    await current.append([current.happened(1)]);
    await eventually(() => seen.length === 2);
    expect(seen).toEqual(["force_generic_plan", "force_generic_plan"]);
    // SET LOCAL: the pool's connections are back on the server's setting afterwards.
    const after = await Promise.all(Array.from({ length: 4 }, () => current!.database.sql<{ m: string }[]>`select current_setting('plan_cache_mode') as m`));
    expect(after.map((r) => r[0]!.m)).toEqual(["auto", "auto", "auto", "auto"]);
  });
});

describe("handleBatch", () => {
  const insertMany = (ctx: HandlerContext, events: EventEnvelope<{ n: number }>[]) =>
    ctx.sql`insert into public.effects (event_id, subject, n)
           select * from unnest(${events.map((e) => e.id)}::uuid[], ${events.map((e) => e.subject)}::text[], ${events.map((e) => e.data.n)}::int[])`;

  it("hands whole batches to the handler in the checkpoint's transaction, each event once", async () => {
    const sizes: number[] = [];
    current = await tdb.start(
      [
        defineSubscription({
          name: "testing.project",
          on: [TestHappened],
          handleBatch: async (events, ctx) => {
            sizes.push(events.length);
            await insertMany(ctx, events);
          },
        }),
      ],
      { batchSize: 100 },
    );
    await current.append(Array.from({ length: 250 }, (_, i) => current!.happened(i)));
    const rows = await eventually(async () => {
      const r = await current!.effects();
      return r.length === 250 && r;
    });
    expect(rows.map((r) => r.n)).toEqual(Array.from({ length: 250 }, (_, i) => i));
    expect(Math.max(...sizes)).toBe(100);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(250);
  });

  it("lingers after a batch that was not full, so events appended meanwhile come as one batch; a full batch is followed at once", async () => {
    const sizes: number[] = [];
    const at: number[] = [];
    current = await tdb.start([
      defineSubscription({
        name: "testing.project",
        on: [TestHappened],
        batchSize: 20,
        lingerMs: 400,
        handleBatch: async (events, ctx) => {
          sizes.push(events.length);
          at.push(Date.now());
          await insertMany(ctx, events);
        },
      }),
    ]);
    await current.append([current.happened(0)]);
    await eventually(async () => (await current!.effects()).length === 1);
    // Five appends within the linger: one batch after it, not five.
    for (let i = 1; i <= 5; i++) {
      await current.append([current.happened(i)]);
      await Bun.sleep(20);
    }
    await eventually(async () => (await current!.effects()).length === 6);
    expect(sizes).toEqual([1, 5]);
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(350);
    // Behind by more than a batch: the full batches follow one another without waiting.
    await Bun.sleep(450);
    sizes.length = 0;
    at.length = 0;
    await current.append(Array.from({ length: 50 }, (_, i) => current!.happened(100 + i)));
    await eventually(async () => (await current!.effects()).length === 56);
    expect(sizes).toEqual([20, 20, 10]);
    expect(at[1]! - at[0]!).toBeLessThan(300);
    expect(at[2]! - at[1]!).toBeLessThan(300);
  });

  it("retries a failing batch event by event, dead-letters only the poison event, then resumes whole batches", async () => {
    const sizes: number[] = [];
    current = await tdb.start(
      [
        defineSubscription({
          name: "testing.project",
          on: [TestHappened],
          maxAttempts: 2,
          backoff: { baseMs: 5, maxMs: 10 },
          handleBatch: async (events, ctx) => {
            sizes.push(events.length);
            await insertMany(ctx, events);
            if (events.some((e) => e.data.n === 13)) throw new Error("13 is unlucky");
          },
        }),
      ],
      { batchSize: 50 },
    );
    await current.append(Array.from({ length: 40 }, (_, i) => current!.happened(i)));
    await eventually(async () => (await current!.effects()).length === 39);
    expect((await current.effects()).map((r) => r.n)).toEqual(Array.from({ length: 40 }, (_, i) => i).filter((n) => n !== 13));
    const [dl] = await current.database.sql`select event_position::int as p, attempts, error from outbox.dead_letters where subscription = 'testing.project'`;
    expect(dl).toMatchObject({ p: 14, attempts: 2, error: "Error: 13 is unlucky" });
    // The range that failed went one event at a time; what follows goes in whole batches again.
    sizes.length = 0;
    await current.append(Array.from({ length: 30 }, (_, i) => current!.happened(100 + i)));
    await eventually(async () => (await current!.effects()).length === 69);
    expect(Math.max(...sizes)).toBeGreaterThan(1);
  });

  it("keeps lineage for what a batch handler appends when each event names its cause", async () => {
    current = await tdb.start([
      defineSubscription({
        name: "testing.project",
        on: [TestHappened],
        handleBatch: async (events, ctx) => {
          await current!.outbox.appender.append(
            ctx.tx,
            events.map((e) => TestFollowed.with({ n: e.data.n }, { subject: e.subject, causedBy: e })),
          );
        },
      }),
    ]);
    await runWithEventContext({ correlationId: "corr-a", actorId: "user-a" }, () => current!.append([current!.happened(1)]));
    await runWithEventContext({ correlationId: "corr-b" }, () => current!.append([current!.happened(2)]));
    const followed = await eventually(async () => {
      const r = await current!.database.sql<{ n: number; causation_id: string; correlation_id: string; actor_id: string | null }[]>`
        select (data->>'n')::int as n, causation_id::text, correlation_id, actor_id from outbox.events where type = 'test.followed' order by n`;
      return r.length === 2 && r;
    });
    const causes = await current.database.sql<{ id: string }[]>`select id::text from outbox.events where type = 'test.happened' order by (data->>'n')::int`;
    expect([...followed]).toEqual([
      { n: 1, causation_id: causes[0]!.id, correlation_id: "corr-a", actor_id: "user-a" },
      { n: 2, causation_id: causes[1]!.id, correlation_id: "corr-b", actor_id: null },
    ]);
  });
});
