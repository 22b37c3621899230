import { afterAll, afterEach, beforeAll, describe, expect, it } from "bun:test";
import { partitionOf } from "../../outbox/hashtext.ts";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { eventually } from "../support/eventually.ts";
import { resetOutbox, startTestOutbox, type TestOutbox } from "../support/outbox.ts";
import { killWorkers, spawnWorker, type WorkerProcess } from "../support/worker-process.ts";

// Worker processes (tests/support/worker-child.ts) run `testing.multi`; this process appends.
let tdb: TestDatabase;
let writer: TestOutbox;
const PARTITIONS = 4;

beforeAll(async () => {
  tdb = await createTestDatabase();
  writer = await startTestOutbox(tdb.url, [], { start: false });
});
afterEach(async () => {
  await killWorkers();
  await resetOutbox(tdb.url);
});
afterAll(async () => {
  await writer.close();
  await tdb.drop();
});

/** subjectsIn returns `count` subjects that hash to `partition`. */
function subjectsIn(partition: number, count: number, prefix: string): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < count; i++) if (partitionOf(`${prefix}-${i}`, PARTITIONS) === partition) out.push(`${prefix}-${i}`);
  return out;
}

/** owners maps each partition of `testing.multi` to the process holding its lease. */
async function owners(): Promise<Map<number, string | null>> {
  const rows = await writer.database.sql<{ partition: number; owner: string | null }[]>`
    select partition, lease_owner as owner from outbox.subscriptions where name = 'testing.multi' order by partition`;
  return new Map(rows.map((r) => [r.partition, r.owner]));
}

// `us` is when the effect was written, in microseconds (a Date would round to milliseconds).
type Effect = { event_id: string; subject: string; n: number; worker: string; us: string; tx: string };
const effects = () =>
  writer.database.sql<Effect[]>`
    select event_id::text, subject, n, worker, (extract(epoch from at) * 1000000)::bigint::text as us, tx::text from public.effects order by seq`;

describe("takeover after a crash", () => {
  it("delivers a killed worker's partitions again within 3 s, long before its leases would expire", async () => {
    // Leases of 60 s: only the stopped heartbeat can free the dead process's partitions in time.
    // A 1 s poll: the survivor must not depend on polling to notice.
    const env = { PARTITIONS: String(PARTITIONS), LEASE_SECONDS: "60", POLL_MS: "1000" };
    await spawnWorker(tdb.url, { WORKER: "a", ...env });
    const b = await spawnWorker(tdb.url, { WORKER: "b", ...env });
    await eventually(
      async () => {
        const held = [...(await owners()).values()];
        return held.filter((o) => o === "a").length === 2 && held.filter((o) => o === "b").length === 2;
      },
      15_000,
      50,
    );
    // Both deliver before the crash.
    await writer.append([...Array(PARTITIONS).keys()].map((p) => writer.happened(p, subjectsIn(p, 1, "warm")[0])));
    await eventually(async () => (await effects()).length === PARTITIONS, 10_000);
    const bParts = [...(await owners())].filter(([, o]) => o === "b").map(([p]) => p);
    expect(bParts).toHaveLength(2);

    const killedAt = performance.now();
    b.proc.kill("SIGKILL");
    await b.proc.exited;
    // One event per partition b held, appended right after the crash.
    await writer.append(bParts.map((p, i) => writer.happened(100 + i, subjectsIn(p, 1, "after")[0])));
    const delivered = await eventually(
      async () => {
        const rows = (await effects()).filter((r) => r.n >= 100);
        return rows.length === bParts.length && rows;
      },
      20_000,
      10,
    );
    const elapsedMs = performance.now() - killedAt;
    expect(delivered.map((r) => r.worker)).toEqual(["a", "a"]);
    expect(elapsedMs).toBeLessThan(3000);
    expect([...(await owners()).values()]).toEqual(["a", "a", "a", "a"]);
  }, 60_000);

  it("never lets two processes deliver one partition at once, through joins, leaves, a pause and a crash", async () => {
    // Small batches with a pause per event inside the transaction widen every window in which
    // two processes could overlap.
    const env = { PARTITIONS: String(PARTITIONS), LEASE_SECONDS: "2", POLL_MS: "100", BATCH: "20", HANDLER_DELAY_MS: "1" };
    const workers = new Map<string, WorkerProcess>();
    for (const w of await Promise.all(["a", "b", "c"].map((name) => spawnWorker(tdb.url, { WORKER: name, ...env })))) workers.set(w.name, w);

    const subjects = 32;
    let appended = 0;
    let appending = true;
    const appender = (async () => {
      // Events keep coming through the whole churn below (bounded: at most 2,500).
      while (appending && appended < 2500) {
        await writer.append(Array.from({ length: 10 }, (_, i) => writer.happened(appended + i, `subject-${(appended + i) % subjects}`)));
        appended += 10;
        await Bun.sleep(50);
      }
    })();

    // The churn is paced in time while events flow (no effect is awaited by sleeping).
    await Bun.sleep(800);
    // A pause longer than the heartbeat timeout: the others take b's partitions over, except
    // one whose row b may hold locked in a transaction; b finds out when it resumes.
    workers.get("b")!.proc.kill("SIGSTOP");
    await Bun.sleep(3000);
    workers.get("b")!.proc.kill("SIGCONT");
    await Bun.sleep(800);
    // A graceful leave and a join.
    workers.get("c")!.proc.kill("SIGTERM");
    await workers.get("c")!.proc.exited;
    workers.set("d", await spawnWorker(tdb.url, { WORKER: "d", ...env }));
    await Bun.sleep(800);
    // A crash in the middle of delivery.
    workers.get("a")!.proc.kill("SIGKILL");
    await Bun.sleep(1500);
    appending = false;
    await appender;

    const total = appended;
    const rows = await eventually(
      async () => {
        const r = await effects();
        return r.length >= total && r;
      },
      60_000,
      100,
    );
    // Exactly once: a crashed or fenced-off batch left no effect behind.
    expect(rows).toHaveLength(total);
    expect(new Set(rows.map((r) => r.event_id)).size).toBe(total);
    // Per-subject order kept across every handover.
    for (const evs of Map.groupBy(rows, (r) => r.subject).values()) {
      const ns = evs.map((e) => e.n);
      expect(ns).toEqual([...ns].sort((x, y) => x - y));
    }
    // Each committed transaction's effects span [first, last]; per partition, those spans
    // never overlap, whichever processes they came from.
    const spans = new Map<string, { partition: number; worker: string; from: number; to: number }>();
    for (const r of rows) {
      const t = Number(r.us);
      const s = spans.get(r.tx);
      if (!s) spans.set(r.tx, { partition: partitionOf(r.subject, PARTITIONS), worker: r.worker, from: t, to: t });
      else {
        expect(s.worker).toBe(r.worker);
        expect(s.partition).toBe(partitionOf(r.subject, PARTITIONS));
        s.from = Math.min(s.from, t);
        s.to = Math.max(s.to, t);
      }
    }
    let handovers = 0;
    for (const list of Map.groupBy([...spans.values()], (s) => s.partition).values()) {
      list.sort((x, y) => x.from - y.from);
      for (let i = 1; i < list.length; i++) {
        const [prev, next] = [list[i - 1]!, list[i]!];
        if (next.from <= prev.to) throw new Error(`partition ${next.partition}: ${prev.worker} delivered until ${prev.to}, ${next.worker} from ${next.from}`);
        if (next.worker !== prev.worker) handovers++;
      }
    }
    // The churn really moved partitions between processes.
    expect(handovers).toBeGreaterThanOrEqual(PARTITIONS);
    expect(new Set(rows.map((r) => r.worker)).size).toBeGreaterThanOrEqual(3);
  }, 120_000);
});
