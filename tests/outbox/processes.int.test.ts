import { afterAll, afterEach, beforeAll, describe, expect, it } from "bun:test";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { eventually } from "../support/eventually.ts";
import { resetOutbox, startTestOutbox, type TestOutbox } from "../support/outbox.ts";

let tdb: TestDatabase;
let writer: TestOutbox;
const children: ReturnType<typeof Bun.spawn>[] = [];

async function spawnWorker(env: Record<string, string>) {
  const child = Bun.spawn(["bun", "tests/support/worker-child.ts"], {
    env: { ...process.env, DB_URL: tdb.url, ...env },
    stdout: "pipe",
    stderr: "inherit",
  });
  children.push(child);
  const reader = child.stdout.getReader();
  let out = "";
  while (!out.includes("ready")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`worker ${env.WORKER} exited before it was ready`);
    out += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return child;
}

type Effect = { event_id: string; subject: string; n: number; worker: string; seq: string };

beforeAll(async () => {
  tdb = await createTestDatabase();
  // The writer only appends; it hosts no subscription.
  writer = await startTestOutbox(tdb.url, [], { start: false });
});
afterEach(async () => {
  for (const c of children.splice(0)) {
    c.kill("SIGKILL");
    await c.exited;
  }
  await resetOutbox(tdb.url);
});
afterAll(async () => {
  await writer.close();
  await tdb.drop();
});

describe("worker processes", () => {
  it("a worker killed mid-batch neither loses nor double-applies effects after another takes over", async () => {
    await writer.append(Array.from({ length: 300 }, (_, i) => writer.happened(i)));
    const doomed = await spawnWorker({ WORKER: "doomed", KILL_AT: "150", LEASE_SECONDS: "1" });
    expect(await doomed.exited).not.toBe(0);
    const committed = (await writer.effects()) as Effect[];
    // Batches of 100: the first committed, the one holding n=150 died with the process.
    expect(committed.map((r) => r.n)).toEqual(Array.from({ length: 100 }, (_, i) => i));

    await spawnWorker({ WORKER: "successor", LEASE_SECONDS: "1" });
    const rows = (await eventually(async () => {
      const r = (await writer.effects()) as Effect[];
      return r.length >= 300 && r;
    }, 15_000)) as Effect[];
    expect(rows).toHaveLength(300);
    expect(new Set(rows.map((r) => r.event_id)).size).toBe(300);
    expect(rows.filter((r) => r.worker === "successor").map((r) => r.n)).toEqual(Array.from({ length: 200 }, (_, i) => i + 100));
  }, 30_000);

  it("two processes on one partitioned subscription never handle one event twice and keep per-subject order", async () => {
    const subjects = 40;
    const total = 2000;
    await Promise.all([
      spawnWorker({ WORKER: "a", PARTITIONS: "4", LEASE_SECONDS: "1", BATCH: "50", HANDLER_DELAY_MS: "1" }),
      spawnWorker({ WORKER: "b", PARTITIONS: "4", LEASE_SECONDS: "1", BATCH: "50", HANDLER_DELAY_MS: "1" }),
    ]);
    for (let i = 0; i < total; i += 200) {
      await writer.append(Array.from({ length: 200 }, (_, j) => writer.happened(i + j, `subject-${(i + j) % subjects}`)));
    }
    const rows = (await eventually(
      async () => {
        const r = (await writer.effects()) as Effect[];
        return r.length >= total && r;
      },
      40_000,
      100,
    )) as Effect[];
    await Bun.sleep(500);
    const final = (await writer.effects()) as Effect[];
    expect(final).toHaveLength(total);
    expect(new Set(rows.map((r) => r.event_id)).size).toBe(total);
    const bySubject = new Map<string, number[]>();
    for (const r of final) bySubject.set(r.subject, [...(bySubject.get(r.subject) ?? []), r.n]);
    for (const ns of bySubject.values()) expect(ns).toEqual([...ns].sort((x, y) => x - y));
    const partitions = await writer.database.sql<{ partition: number; lease_owner: string | null }[]>`
      select partition, lease_owner from outbox.subscriptions where name = 'testing.multi' order by partition`;
    expect(partitions).toHaveLength(4);
    // The partitions are shared out: both processes did part of the work, each partition's
    // subjects by one process at a time.
    const byWorker = Map.groupBy(final, (r) => r.worker);
    expect([...byWorker.keys()].sort()).toEqual(["a", "b"]);
  }, 60_000);
});
