import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import postgres from "postgres";
import { declaredRunning, declareNoAppends } from "../../outbox/horizon.ts";
import { defineSubscription } from "../../outbox/index.ts";
import { connectDatabase, rawSql } from "../../src/db/client.ts";
import { eventually } from "../support/eventually.ts";
import { outboxTestFile, recordEffect, TestHappened, TestNoted, type TestOutbox } from "../support/outbox.ts";

// The read horizon (outbox/horizon.ts, migration 0017): a transaction that declared it appends no
// events does not hold subscriptions back; one that did not declare still does; a declared one
// cannot append, and cannot declare after its first write.
const tdb = outboxTestFile();
let sql: postgres.Sql;

beforeAll(() => {
  sql = postgres(tdb.url, { max: 6, onnotice: () => {} });
});
afterAll(() => sql.end({ timeout: 2 }));

/** openWriter begins a transaction on a reserved connection, declared or not, that writes (so it has an id) and stays open. */
async function openWriter(declared: boolean) {
  const conn = await sql.reserve();
  await conn`begin`;
  if (declared) await conn`select outbox.declare_no_appends()`;
  await conn`create temp table if not exists scratch (x int)`;
  const [row] = await conn<{ xid: string }[]>`insert into scratch values (1) returning pg_current_xact_id()::text as xid`;
  const xid = row!.xid;
  return {
    xid,
    conn,
    async end() {
      await conn`commit`;
      conn.release();
    },
  };
}

/**
 * horizon reads the horizon beside what it must be, from the same snapshot: the oldest running
 * transaction other than `declared`, or the snapshot's xmax. The cluster is shared (other
 * databases' transactions are in every snapshot), so the expectation is computed, not assumed.
 */
const horizon = async (declared?: string) =>
  (
    await sql<{ h: string; expected: string; xmin: string }[]>`
      select outbox.read_horizon()::text as h, pg_snapshot_xmin(pg_current_snapshot())::text as xmin,
        coalesce((select min(x) from pg_snapshot_xip(pg_current_snapshot()) x where x::text <> ${declared ?? ""}),
                 pg_snapshot_xmax(pg_current_snapshot()))::text as expected`
  )[0]!;

/** expectSkipped reads the horizon and checks it is what it must be, and not the declared transaction `xid`. */
async function expectSkipped(xid: string) {
  const seen = await horizon(xid);
  expect(seen.h).toBe(seen.expected);
  expect(seen.h).not.toBe(xid);
  return seen;
}

/** tick commits a transaction with an id, so the snapshot lists every older one still running (below its xmax). */
const tick = () => sql.begin((tx) => tx`select pg_current_xact_id()`);

describe("outbox.read_horizon()", () => {
  it("is the oldest running transaction that did not declare, skipping declared ones", async () => {
    const quiet = await openWriter(true);
    try {
      const plain = await openWriter(false);
      try {
        await tick();
        const seen = await expectSkipped(quiet.xid);
        expect(BigInt(seen.h)).toBeLessThanOrEqual(BigInt(plain.xid));
      } finally {
        await plain.end();
      }
      await tick();
      await expectSkipped(quiet.xid);
    } finally {
      await quiet.end();
    }
    const idle = await horizon();
    expect(idle.h).toBe(idle.xmin);
  });

  it("counts a declared transaction's savepoints (subtransaction ids) as declared too", async () => {
    const quiet = await openWriter(true);
    try {
      await quiet.conn`savepoint a`;
      await quiet.conn`insert into scratch values (2)`;
      await tick();
      await expectSkipped(quiet.xid);
    } finally {
      await quiet.end();
    }
  });

  it("is declared by declareNoAppends on a db.transaction, which this process then knows is running", async () => {
    const database = connectDatabase(tdb.url, { max: 2 });
    let xid = "";
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let written!: () => void;
    const wrote = new Promise<void>((resolve) => (written = resolve));
    try {
      expect(declaredRunning()).toBe(false);
      const running = database.db.transaction(async (handle) => {
        await declareNoAppends(handle);
        const tx = rawSql(handle);
        await tx`create temp table if not exists scratch (x int)`;
        xid = (await tx<{ xid: string }[]>`insert into scratch values (1) returning pg_current_xact_id()::text as xid`)[0]!.xid;
        written();
        await gate;
      });
      try {
        await wrote;
        expect(declaredRunning()).toBe(true);
        await tick();
        await expectSkipped(xid);
      } finally {
        open();
        await running;
      }
      expect(declaredRunning()).toBe(false);
    } finally {
      await database.close(2);
    }
  });

  it("refuses an append in a declared transaction, and a declaration after the first write", async () => {
    const quiet = await openWriter(true);
    try {
      await expect(
        quiet.conn`insert into outbox.events (id, source, type, subject, time, data, correlation_id)
                   values (gen_random_uuid(), 'testing', 'test.noted', 's', now(), '{"n":1}', 'c')`,
      ).rejects.toThrow(/declared that it appends no events/);
    } finally {
      await quiet.conn`rollback`;
      quiet.conn.release();
    }
    const late = await openWriter(false);
    try {
      await expect(late.conn`select outbox.declare_no_appends()`).rejects.toThrow(/before the transaction's first write/);
    } finally {
      await late.conn`rollback`;
      late.conn.release();
    }
    expect((await sql`select count(*)::int as n from outbox.events`)[0]!.n).toBe(0);
  });
});

/**
 * twoSubscriptions starts a slow projection on TestHappened that writes, then waits for `gate`
 * with its transaction open, and a fast handler on TestNoted that records its events.
 */
async function twoSubscriptions(appends: boolean) {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  let holding = false;
  const t = await tdb.start([
    defineSubscription({
      name: "testing.slow-model",
      on: [TestHappened],
      appends,
      handleBatch: async (events, { tx }) => {
        for (const e of events) await recordEffect(tx, e, "slow");
        holding = true;
        await gate;
      },
    }),
    defineSubscription({ name: "testing.fast", on: [TestNoted], handler: (e, { tx }) => recordEffect(tx, e, "fast") }),
  ]);
  await t.append([t.happened(1)]);
  await eventually(() => expect(holding).toBe(true));
  return { t, open };
}

const fastSeen = async (t: TestOutbox) => (await t.effects()).filter((e) => e.worker === "fast").length;

describe("a subscription defined with appends: false", () => {
  it("does not hold other subscriptions back while its delivery is open", async () => {
    const { t, open } = await twoSubscriptions(false);
    try {
      await t.append([TestNoted.with({ n: 2 }, { subject: "noted" })]);
      await eventually(async () => expect(await fastSeen(t)).toBe(1), 3_000);
    } finally {
      open();
    }
    await eventually(async () => expect((await t.effects()).map((e) => e.worker).sort()).toEqual(["fast", "slow"]));
  });

  it("(the control: undeclared, the same delivery holds them back until it commits)", async () => {
    const { t, open } = await twoSubscriptions(true);
    try {
      await t.append([TestNoted.with({ n: 2 }, { subject: "noted" })]);
      await Bun.sleep(800);
      expect(await fastSeen(t)).toBe(0);
    } finally {
      open();
    }
    await eventually(async () => expect(await fastSeen(t)).toBe(1));
  });

  it("fails a delivery that appends, and dead-letters its event with the reason", async () => {
    let current: TestOutbox | undefined;
    const t = await tdb.start([
      defineSubscription({
        name: "testing.quiet",
        on: [TestHappened],
        appends: false,
        maxAttempts: 1,
        handler: async (e, { tx }) => {
          await recordEffect(tx, e, "quiet");
          await current!.outbox.appender.append(tx, [TestNoted.with({ n: e.data.n }, { subject: e.subject })]);
        },
      }),
    ]);
    current = t;
    await t.append([t.happened(1)]);
    await eventually(async () => {
      const dead = await sql<{ error: string }[]>`select error from outbox.dead_letters where subscription = 'testing.quiet'`;
      expect(dead.length).toBe(1);
      expect(dead[0]!.error).toContain("appends no events");
    });
    expect(await t.effects()).toEqual([]);
    expect((await sql`select count(*)::int as n from outbox.events where type = 'test.noted'`)[0]!.n).toBe(0);
  });

  it("is refused for a relay", async () => {
    const { outbox } = await tdb.start([], { start: false });
    expect(() => outbox.subscribe([{ name: "testing.relay", appends: false, batchHandler: async () => {} }])).toThrow(/not relays/);
  });
});
