import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import postgres from "postgres";
import type { EventEnvelope } from "../../outbox/index.ts";
import { createAppender } from "../../outbox/store.ts";
import { Wakeup } from "../../outbox/wakeup.ts";
import { connectDatabase, type Database } from "../../src/db/client.ts";
import { EventRegistry } from "../../src/events/registry.ts";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { TestHappened, testEvents } from "../support/outbox.ts";

// A loop woken for an append that an older open transaction still hides (the read horizon) waits
// for that transaction to end, not for whatever commits next: these pin down the doorbell's side
// of it, and that an append reports the transaction it committed in.
let tdb: TestDatabase;
let sql: postgres.Sql;

beforeAll(async () => {
  tdb = await createTestDatabase();
  sql = postgres(tdb.url, { max: 2, onnotice: () => {} });
});
afterAll(async () => {
  await sql.end({ timeout: 2 });
  await tdb.drop();
});

const event = (type: string) => ({ type }) as EventEnvelope;
/** settled says whether `p` has settled within `ms`. */
const settled = (p: Promise<unknown>, ms: number) => Promise.race([p.then(() => true), Bun.sleep(ms).then(() => false)]);

describe("WakeSignal.waitForCommit", () => {
  it("is released by the end of the transaction it waits for, not by others' commits or appends of other types", async () => {
    const wakeup = new Wakeup(sql, "p1", 10_000);
    const signal = wakeup.register((e) => e.type === "mine");
    const waiting = signal.waitForCommit(2_000, "42");
    wakeup.ended("41");
    wakeup.appended([event("other")], "43");
    expect(await settled(waiting, 50)).toBe(false);
    wakeup.ended("42");
    expect(await settled(waiting, 50)).toBe(true);
    expect(signal.consume()).toBe(false); // a reason to look again, not a wake
    signal.close();
    await wakeup.close();
  });

  it("returns at once when that transaction ended moments ago, and waits out its time otherwise", async () => {
    const wakeup = new Wakeup(sql, "p1", 10_000);
    const signal = wakeup.register(() => true);
    wakeup.appended([event("x")], "7");
    signal.consume();
    expect(await settled(signal.waitForCommit(2_000, "7"), 20)).toBe(true);
    const started = performance.now();
    await signal.waitForCommit(30, "8");
    expect(performance.now() - started).toBeGreaterThanOrEqual(25);
    signal.close();
    await wakeup.close();
  });

  it("without a transaction to wait for, is released by any commit; an append it reads wakes it either way", async () => {
    const wakeup = new Wakeup(sql, "p1", 10_000);
    const signal = wakeup.register((e) => e.type === "mine");
    const any = signal.waitForCommit(2_000);
    wakeup.ended("5");
    expect(await settled(any, 50)).toBe(true);
    const specific = signal.waitForCommit(2_000, "99");
    wakeup.appended([event("mine")], "6");
    expect(await settled(specific, 50)).toBe(true);
    expect(signal.consume()).toBe(true);
    signal.close();
    await wakeup.close();
  });

  it("says which transaction rang (the newest), and whether a wake came without one", async () => {
    const wakeup = new Wakeup(sql, "p1", 10_000);
    const signal = wakeup.register(() => true);
    wakeup.appended([event("x")], "100");
    wakeup.appended([event("x")], "99");
    expect(signal.consumeAwaited()).toEqual({ xid: 100n, blind: false });
    expect(signal.consumeAwaited()).toEqual({ xid: undefined, blind: false });
    wakeup.wakeLocal();
    expect(signal.consumeAwaited()).toEqual({ xid: undefined, blind: true });
    signal.close();
    await wakeup.close();
  });
});

describe("the transaction an append reports", () => {
  it("is the one its events were written in, told after commit, and never for a rollback", async () => {
    const database: Database = connectDatabase(tdb.url, { max: 2 });
    const told: { ids: string[]; xid: string | undefined }[] = [];
    const appender = createAppender(new EventRegistry().register(...testEvents), (events, xid) => told.push({ ids: events.map((e) => e.id), xid }));
    try {
      const envs = await database.db.transaction(async (tx) => {
        const out = await appender.append(tx, [TestHappened.with({ n: 1 }, { subject: "w" }), TestHappened.with({ n: 2 }, { subject: "w" })]);
        expect(told).toEqual([]);
        return out;
      });
      const rows = await sql<
        { xid: string }[]
      >`select distinct transaction_id::text as xid from outbox.events where id = any(${envs.map((e) => e.id)}::uuid[])`;
      expect(rows).toHaveLength(1);
      expect(told).toEqual([{ ids: envs.map((e) => e.id), xid: rows[0]!.xid }]);
      await database.db
        .transaction(async (tx) => {
          await appender.append(tx, [TestHappened.with({ n: 3 }, { subject: "w" })]);
          throw new Error("roll back");
        })
        .catch(() => {});
      expect(told).toHaveLength(1);
    } finally {
      await database.close(2);
    }
  });
});
