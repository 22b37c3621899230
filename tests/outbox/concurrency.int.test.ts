import { describe, expect, it } from "bun:test";
import { noteAppend, relaxCommit } from "../../outbox/durability.ts";
import { defineSubscription, InvalidSubscriptionError } from "../../outbox/index.ts";
import { rawSql } from "../../src/db/client.ts";
import { eventually } from "../support/eventually.ts";
import { outboxTestFile, recordEffect, TestFollowed, TestHappened, type TestOutbox } from "../support/outbox.ts";

const tdb = outboxTestFile();
let current: TestOutbox | undefined;

// 8 subjects, 40 events each, interleaved in the log: s-0 n=0, s-1 n=1, ... s-0 n=8, ...
const SUBJECTS = 8;
const PER_SUBJECT = 40;
const interleaved = (t: TestOutbox) => Array.from({ length: SUBJECTS * PER_SUBJECT }, (_, n) => t.happened(n, `s-${n % SUBJECTS}`));

describe("per-event handlers with concurrency", () => {
  it("handles different subjects at once, each subject's events in log order, each once", async () => {
    let running = 0;
    let most = 0;
    current = await tdb.start([
      defineSubscription({
        name: "testing.concurrent",
        on: [TestHappened],
        concurrency: 4,
        handler: async (e, { tx }) => {
          running++;
          most = Math.max(most, running);
          try {
            // A pause that differs from event to event, so handlers overlap for real and a later
            // event would overtake an earlier one if nothing kept a subject's order.
            await Bun.sleep((PER_SUBJECT * SUBJECTS - e.data.n) % 4);
            await recordEffect(tx, e);
          } finally {
            running--;
          }
        },
      }),
    ]);
    await current.append(interleaved(current));
    const rows = await eventually(async () => {
      const r = await current!.effects();
      return r.length === SUBJECTS * PER_SUBJECT && r;
    });
    expect(new Set(rows.map((r) => r.event_id)).size).toBe(SUBJECTS * PER_SUBJECT);
    // Per subject: the log's order (the effects' seq is the order the inserts ran in).
    for (let s = 0; s < SUBJECTS; s++) {
      const ns = rows.filter((r) => r.subject === `s-${s}`).map((r) => r.n);
      expect(ns).toEqual(Array.from({ length: PER_SUBJECT }, (_, i) => i * SUBJECTS + s));
    }
    expect(most).toBeGreaterThan(1);
    expect(most).toBeLessThanOrEqual(4);
    // Across subjects the inserts ran out of log order (they ran at once).
    const ns = rows.map((r) => r.n);
    expect(ns).not.toEqual([...ns].sort((a, b) => a - b));
  });

  it("never runs two events of one subject at once", async () => {
    const busy = new Set<string>();
    let overlapped = 0;
    current = await tdb.start([
      defineSubscription({
        name: "testing.one-subject",
        on: [TestHappened],
        concurrency: 8,
        handler: async (e, { tx }) => {
          if (busy.has(e.subject)) overlapped++;
          busy.add(e.subject);
          await Bun.sleep(1);
          await recordEffect(tx, e);
          busy.delete(e.subject);
        },
      }),
    ]);
    // Two subjects only, so most events wait for the one before them.
    await current.append(Array.from({ length: 60 }, (_, n) => current!.happened(n, `s-${n % 2}`)));
    const rows = await eventually(async () => {
      const r = await current!.effects();
      return r.length === 60 && r;
    });
    expect(overlapped).toBe(0);
    for (const s of [0, 1]) {
      const ns = rows.filter((r) => r.subject === `s-${s}`).map((r) => r.n);
      expect(ns).toEqual([...ns].sort((a, b) => a - b));
    }
  });

  it("rolls a failed batch back and delivers it again one at a time: effects once, the failing event retried", async () => {
    let failures = 0;
    const attempts: number[] = [];
    current = await tdb.start([
      defineSubscription({
        name: "testing.concurrent-flaky",
        on: [TestHappened],
        concurrency: 4,
        backoff: { baseMs: 5, maxMs: 20 },
        handler: async (e, { tx, attempt }) => {
          await recordEffect(tx, e);
          if (e.data.n === 100) {
            attempts.push(attempt);
            if (failures < 2) {
              failures++;
              throw new Error("transient failure");
            }
          }
        },
      }),
    ]);
    await current.append(interleaved(current));
    const rows = await eventually(async () => {
      const r = await current!.effects();
      return r.length === SUBJECTS * PER_SUBJECT && r;
    });
    await Bun.sleep(200);
    expect((await current.effects()).length).toBe(SUBJECTS * PER_SUBJECT);
    expect(new Set(rows.map((r) => r.event_id)).size).toBe(SUBJECTS * PER_SUBJECT);
    expect(failures).toBe(2);
    // The concurrent pass (attempt 1, rolled back, not counted), then the in-order pass that
    // finds it (attempt 1 again, counted), then its retry, which succeeds.
    expect(attempts).toEqual([1, 1, 2]);
    const [cp] = await current.database
      .sql`select failing_position, processed_count::int as processed from outbox.subscriptions where name = 'testing.concurrent-flaky'`;
    expect(cp!.failing_position).toBeNull();
  });

  it("dead-letters a poison event and goes on", async () => {
    current = await tdb.start([
      defineSubscription({
        name: "testing.concurrent-poison",
        on: [TestHappened],
        concurrency: 4,
        maxAttempts: 2,
        backoff: { baseMs: 5, maxMs: 10 },
        handler: async (e, { tx }) => {
          if (e.data.n === 50) throw new Error("poison");
          await recordEffect(tx, e);
        },
      }),
    ]);
    await current.append(interleaved(current));
    await eventually(async () => (await current!.effects()).length === SUBJECTS * PER_SUBJECT - 1);
    const dead = await current.database.sql`select event_id::text from outbox.dead_letters where subscription = 'testing.concurrent-poison'`;
    expect(dead.length).toBe(1);
  });

  it("refuses concurrency outside 1-64 and on anything but a per-event handler", async () => {
    current = await tdb.start([], { start: false });
    const { outbox } = current;
    expect(() => outbox.subscribe([{ name: "testing.zero", on: [TestHappened], concurrency: 0, handler: async () => {} }])).toThrow(InvalidSubscriptionError);
    expect(() => outbox.subscribe([{ name: "testing.many", on: [TestHappened], concurrency: 65, handler: async () => {} }])).toThrow(InvalidSubscriptionError);
    expect(() => outbox.subscribe([{ name: "testing.batch", on: [TestHappened], concurrency: 2, handleBatch: async () => {} } as never])).toThrow(
      /per-event handlers only/,
    );
  });
});

describe("delivery commits", () => {
  const setting = async (t: TestOutbox, body: (tx: Parameters<Parameters<TestOutbox["database"]["db"]["transaction"]>[0]>[0]) => Promise<void>) =>
    t.database.db.transaction(async (tx) => {
      await body(tx);
      const [row] = await rawSql(tx)<{ v: string }[]>`select current_setting('synchronous_commit') as v`;
      return row!.v;
    });

  it("relax a transaction that appended nothing, and keep one that appended events durable", async () => {
    current = await tdb.start([], { start: false });
    const t = current;
    expect(await setting(t, (tx) => relaxCommit(tx))).toBe("off");
    expect(
      await setting(t, async (tx) => {
        await t.outbox.appender.append(tx, [TestFollowed.with({ n: 1 }, { subject: "x" })]);
        await relaxCommit(tx);
      }),
    ).toBe("on");
    expect(
      await setting(t, async (tx) => {
        noteAppend(tx);
        await relaxCommit(tx);
      }),
    ).toBe("on");
  });

  it("commits a delivery that appends durably, and one that does not without waiting for the flush", async () => {
    // What each delivery transaction's setting was when it committed: read by the statement
    // after the checkpoint advance, through a deferred constraint trigger on the effects table.
    current = await tdb.start([], { start: false });
    await current.database.sql.unsafe(`
      create table if not exists public.commit_settings (event_id uuid, setting text);
      create or replace function public.note_commit_setting() returns trigger language plpgsql as $$
        begin insert into public.commit_settings values (new.event_id, current_setting('synchronous_commit')); return null; end $$;
      drop trigger if exists note_commit_setting on public.effects;
      create constraint trigger note_commit_setting after insert on public.effects deferrable initially deferred
        for each row execute function public.note_commit_setting();`);
    await current.close();
    current = await tdb.start([
      defineSubscription({
        name: "testing.plain",
        on: [TestHappened],
        handler: async (e, { tx }) => {
          await recordEffect(tx, e);
          if (e.data.n % 2 === 0) await current!.outbox.appender.append(tx, [TestFollowed.with({ n: e.data.n }, { subject: e.subject })]);
        },
      }),
    ]);
    // One event per transaction, so each delivery is its own transaction.
    for (let n = 0; n < 4; n++) {
      await current.append([current.happened(n)]);
      await eventually(async () => (await current!.effects()).length === n + 1);
    }
    const rows = await current.database.sql`
      select e.n, s.setting from public.commit_settings s join public.effects e using (event_id) order by e.n`;
    expect(rows.map((r) => ({ n: r.n, setting: r.setting }))).toEqual([
      { n: 0, setting: "on" },
      { n: 1, setting: "off" },
      { n: 2, setting: "on" },
      { n: 3, setting: "off" },
    ]);
  });
});
