import { afterAll, afterEach, beforeAll, describe, expect, it } from "bun:test";
import { defineSubscription } from "../../outbox/index.ts";
import { assignee } from "../../outbox/membership.ts";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { eventually } from "../support/eventually.ts";
import { recordEffect, resetOutbox, startTestOutbox, TestHappened, type TestOutbox } from "../support/outbox.ts";

let tdb: TestDatabase;
let writer: TestOutbox;
const running: TestOutbox[] = [];

const PARTITIONS = 6;
const shared = (worker: string) =>
  defineSubscription({
    name: "testing.shared",
    on: [TestHappened],
    partitions: PARTITIONS,
    handler: (event, ctx) => recordEffect(ctx.tx, event, worker),
  });

/** join starts a process-like outbox (own pool, own process id) running the shared subscription. */
async function join(worker: string): Promise<TestOutbox> {
  const t = await startTestOutbox(tdb.url, [shared(worker)], { processId: `proc-${worker}`, leaseSeconds: 1.5, pollMs: 100 });
  running.push(t);
  return t;
}

async function leave(t: TestOutbox): Promise<void> {
  running.splice(running.indexOf(t), 1);
  await t.close();
}

/** leases counts the partitions each process holds. */
async function leases(): Promise<Record<string, number>> {
  const rows = await writer.database.sql<{ owner: string; n: number }[]>`
    select lease_owner as owner, count(*)::int as n from outbox.subscriptions
     where name = 'testing.shared' and lease_owner is not null and lease_expires_at > now() group by lease_owner`;
  return Object.fromEntries(rows.map((r) => [r.owner, r.n]));
}

const balanced = (want: Record<string, number>) => async () => {
  const got = await leases();
  return JSON.stringify(got, Object.keys(got).sort()) === JSON.stringify(want, Object.keys(want).sort()) && got;
};

beforeAll(async () => {
  tdb = await createTestDatabase();
  writer = await startTestOutbox(tdb.url, [], { start: false });
});
afterEach(async () => {
  for (const t of running.splice(0)) await t.close();
  await resetOutbox(tdb.url);
});
afterAll(async () => {
  await writer.close();
  await tdb.drop();
});

describe("partitions shared among processes", () => {
  it("assigns partitions round-robin from a per-subscription offset, so every member gets its share", () => {
    for (const k of [1, 2, 3, 4, 7]) {
      for (const name of ["a.one", "b.two", "testing.shared"]) {
        const counts = new Array(k).fill(0);
        for (let p = 0; p < 12; p++) counts[assignee(name, p, k)]++;
        expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
      }
    }
    // Single-partition subscriptions land on different members depending on their name.
    const homes = new Set(Array.from({ length: 20 }, (_, i) => assignee(`mod.sub-${i}`, 0, 3)));
    expect(homes.size).toBe(3);
  });

  it("splits the partitions evenly between the processes running a subscription, and both do the work", async () => {
    await join("a");
    await eventually(balanced({ "proc-a": 6 }), 10_000, 50);
    await join("b");
    await eventually(balanced({ "proc-a": 3, "proc-b": 3 }), 10_000, 50);

    await writer.append(Array.from({ length: 300 }, (_, i) => writer.happened(i, `subject-${i % 30}`)));
    const rows = await eventually(async () => {
      const r = await writer.effects();
      return r.length >= 300 && r;
    }, 15_000);
    expect(new Set(rows.map((r) => r.event_id)).size).toBe(300);
    const bySubject = Map.groupBy(rows, (r) => r.subject);
    for (const events of bySubject.values()) {
      expect(new Set(events.map((e) => e.worker)).size).toBe(1); // a subject's partition belongs to one process
      expect(events.map((e) => e.n)).toEqual(events.map((e) => e.n).sort((x, y) => x - y));
    }
    expect(new Set(rows.map((r) => r.worker))).toEqual(new Set(["a", "b"]));
  }, 30_000);

  it("rebalances when a process joins and when one leaves, and keeps delivering exactly once", async () => {
    const a = await join("a");
    const b = await join("b");
    await eventually(balanced({ "proc-a": 3, "proc-b": 3 }), 10_000, 50);
    const c = await join("c");
    await eventually(balanced({ "proc-a": 2, "proc-b": 2, "proc-c": 2 }), 10_000, 50);
    await writer.append(Array.from({ length: 120 }, (_, i) => writer.happened(i, `subject-${i % 24}`)));
    await eventually(async () => (await writer.effects()).length >= 120, 15_000);

    await leave(b);
    await eventually(balanced({ "proc-a": 3, "proc-c": 3 }), 10_000, 50);
    await leave(a);
    await eventually(balanced({ "proc-c": 6 }), 10_000, 50);
    await writer.append(Array.from({ length: 120 }, (_, i) => writer.happened(120 + i, `subject-${i % 24}`)));
    const rows = await eventually(async () => {
      const r = await writer.effects();
      return r.length >= 240 && r;
    }, 15_000);
    await Bun.sleep(300);
    expect(await writer.effects()).toHaveLength(240);
    expect(new Set(rows.map((r) => r.event_id)).size).toBe(240);
    expect(rows.filter((r) => r.n >= 120).every((r) => r.worker === "c")).toBe(true);
    void c;
  }, 40_000);

  it("takes over the partitions of a process that stopped heartbeating, once its membership and leases expire", async () => {
    await join("a");
    const b = await join("b");
    await eventually(balanced({ "proc-a": 3, "proc-b": 3 }), 10_000, 50);
    // Simulate a crash: b's workers stop without releasing leases or withdrawing.
    running.splice(running.indexOf(b), 1);
    await b.database.sql`select 1`;
    await b.database.close(0);
    await b.outbox.stop().catch(() => {});
    await eventually(balanced({ "proc-a": 6 }), 15_000, 100);
    const [members] = await writer.database.sql<{ n: number }[]>`
      select count(*)::int as n from outbox.subscription_members where subscription = 'testing.shared' and expires_at > now()`;
    expect(members!.n).toBe(1);
  }, 30_000);
});
