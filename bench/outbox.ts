/**
 * Outbox benchmark: every figure is measured beside a reference taken in the same run on the
 * same server, then printed as a table and written to bench/results/outbox-*.json.
 *
 *   1. single-event append tx/s (domain row + event, 8 writers) vs pgbench running the same SQL
 *   2. batched append events/s (500 per call) vs a raw postgres.js unnest insert of the same rows
 *   3. delivery events/s of a 4-partition subscription catching up on a backlog vs the raw insert
 *      rate of the rows its handler writes
 *   4. commit-to-handler latency P50/P99 at a paced 1,000 events/s
 *   5. publish-and-consume vs pg-boss 12; single-event appends vs Emmett's PostgreSQL event store
 *
 * Run with `bun run bench` (all benchmarks) or `bun bench/outbox.ts`. Environment:
 *   DATABASE_URL          server to use (default postgres://postgres@127.0.0.1:5432/postgres;
 *                         loopback only); each run creates bench_<timestamp>_<pid>[_peer]
 *                         databases from scratch and drops them at the end
 *   BENCH_SECONDS         length of a measured phase (default 6); counts scale with it
 *   BENCH_ONLY            comma list of phases: append,batch,delivery,latency,pgboss,emmett (or
 *                         outbox for all of them); other benchmarks' phases skip this one
 *   BENCH_STRICT=1        exit 2 when a target is missed
 *   BENCH_LOG_LEVEL       pino level of the outbox under test (default silent)
 *   BENCH_LATENCY_RATE    paced rate of the latency phase (default 1000/s)
 *   BENCH_BATCH_WRITERS   writers of the batched-append phase (default 4)
 *   PGBENCH               pgbench binary (default /usr/lib/postgresql/15/bin/pgbench)
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getPostgreSQLEventStore } from "@event-driven-io/emmett-postgresql";
import { randomUUIDv7 } from "bun";
import { type SQL, sql } from "drizzle-orm";
import { PgBoss } from "pg-boss";
import pino from "pino";
import postgres from "postgres";
import { z } from "zod";
import type { EventEnvelope } from "../outbox/envelope.ts";
import { createOutbox, type HandlerContext, type Outbox, type OutboxMetrics, type SubscriptionDefinition } from "../outbox/index.ts";
import { executePrepared } from "../outbox/store.ts";
import { noopMetrics } from "../outbox/types.ts";
import { connectDatabase, type Database, rawSql, type Tx } from "../src/db/client.ts";
import { defineEvent } from "../src/events/definition.ts";
import { EventRegistry } from "../src/events/registry.ts";
import {
  type BenchDatabase,
  baseUrl,
  combine,
  createBenchDatabase,
  dropBenchDatabases,
  type Figure,
  figure,
  formatTable,
  INFO,
  type LoopResult,
  log,
  nowMs,
  percentile,
  phaseSeconds,
  runLoop,
  runMeta,
  scale,
  selectedPhases,
  waitUntil,
  wallMs,
  writeResults,
} from "./support.ts";

const T = phaseSeconds();
const S = scale();
const PGBENCH = process.env.PGBENCH ?? "/usr/lib/postgresql/15/bin/pgbench";
/** Writers for single-event appends, and the pool size both sides of each comparison get. */
const WRITERS = 8;
const POOL = 10;
const BATCH_WRITERS = Number(process.env.BENCH_BATCH_WRITERS ?? 4);
const BATCH_EVENTS = 500;
const PARTITIONS = Number(process.env.BENCH_PARTITIONS ?? 4);
const DELIVERY_EVENTS = Math.max(20_000, Math.round(200_000 * S));
/**
 * Events of different subjects each partition of the delivery subscription handles at once
 * (its `concurrency`; 1 = strictly one after another). The handler writes one row of its own
 * event, the kind of handler that declares it safe.
 */
const DELIVERY_CONCURRENCY = Number(process.env.BENCH_DELIVERY_CONCURRENCY ?? 8);
const LATENCY_RATE = Number(process.env.BENCH_LATENCY_RATE ?? 1000);
const LATENCY_SECONDS = Math.max(3, Math.round((10 * T) / 6));
const LATENCY_WARMUP_SECONDS = 1;
const RELAY_JOBS = Math.max(2_000, Math.round(15_000 * S));
/** BENCH_ONLY=append,batch,delivery,latency,pgboss,emmett runs a subset of the phases (`outbox`: all). */
const ONLY = selectedPhases("outbox", ["append", "batch", "delivery", "latency", "pgboss", "emmett"]);
/** No wait for a drain or a catch-up lasts longer than this. */
const DRAIN_CAP_MS = Math.max(30_000, 10_000 * T);

const benchEvent = <T extends `bench.${string}`, S extends z.ZodType>(type: T, description: string, schema: S) =>
  defineEvent({ source: "bench", type, visibility: "public", description, schema });
const BenchHappened = benchEvent("bench.happened", "Benchmark event", z.object({ n: z.number().int(), sentAt: z.number().optional() }));
const BenchDelivered = benchEvent("bench.delivered", "Benchmark backlog event", z.object({ n: z.number().int() }));
const BenchPaced = benchEvent("bench.paced", "Benchmark latency event", z.object({ n: z.number().int(), sentAt: z.number() }));
const BenchRelayed = benchEvent("bench.relayed", "Benchmark publish-and-consume event", z.object({ n: z.number().int() }));
const registry = new EventRegistry().register(BenchHappened, BenchDelivered, BenchPaced, BenchRelayed);
const silent = pino({ level: process.env.BENCH_LOG_LEVEL ?? "silent" });

const BENCH_DDL = `
  create schema if not exists bench;
  create table if not exists bench.accounts (id uuid primary key, owner text not null, balance bigint not null default 0, created_at timestamptz not null default now());
  create table if not exists bench.effects (seq bigserial primary key, event_id uuid not null, subject text not null, n int not null);
  create table if not exists bench.effects_ref (seq bigserial primary key, event_id uuid not null, subject text not null, n int not null);
  create table if not exists bench.effects_in_order (seq bigserial primary key, event_id uuid not null, subject text not null, n int not null);
  create table if not exists bench.effects_batch (seq bigserial primary key, event_id uuid not null, subject text not null, n int not null);
  create table if not exists bench.latency_effects (seq bigserial primary key, event_id uuid not null, subject text not null, n int not null);
  create table if not exists bench.relay_effects (seq bigserial primary key, event_id uuid not null, subject text not null, n int not null);`;
const BOSS_DDL = `
  create schema if not exists bench;
  create table if not exists bench.relay_effects (seq bigserial primary key, event_id uuid not null, subject text not null, n int not null);`;

const subjectOf = (n: number) => `acct-${n % 4096}`;

// The benchmark's own writes (the domain row, the handlers' rows) are prepared statements, as
// pgbench -M prepared and pg-boss's driver send on the other side: what is compared is the
// outbox, not how the caller writes its own rows. executePrepared is the outbox's helper for
// that (drizzle's `.prepare()` path for a raw statement); a handler on `tx.execute` pays a second
// round trip per statement, and one on drizzle's query builder about twice the client CPU.
type EffectsTable = "effects" | "latency_effects" | "relay_effects";
const effectInserts: Record<EffectsTable, (e: EventEnvelope) => SQL> = {
  effects: (e) => sql`insert into bench.effects (event_id, subject, n) values (${e.id}::uuid, ${e.subject}, ${(e.data as { n: number }).n})`,
  latency_effects: (e) => sql`insert into bench.latency_effects (event_id, subject, n) values (${e.id}::uuid, ${e.subject}, ${(e.data as { n: number }).n})`,
  relay_effects: (e) => sql`insert into bench.relay_effects (event_id, subject, n) values (${e.id}::uuid, ${e.subject}, ${(e.data as { n: number }).n})`,
};

/** recordEffect is the benchmark handlers' body: one row per event in the handler's transaction. */
function recordEffect(table: EffectsTable, tx: Tx, event: EventEnvelope): Promise<unknown> {
  return executePrepared(tx, effectInserts[table](event), `bench_${table}_insert`);
}

/** countingMetrics: `processed` fires after a batch committed, so the count is committed work. */
function countingMetrics(): OutboxMetrics & { count: number; failures: number } {
  const m = {
    ...noopMetrics,
    count: 0,
    failures: 0,
    processed(_s: string, _p: number, n: number) {
      m.count += n;
    },
    failed() {
      m.failures++;
    },
  };
  return m;
}

function outboxOn(database: Database, subs: SubscriptionDefinition[], metrics?: OutboxMetrics): Outbox {
  const outbox = createOutbox({ database, registry, log: silent, metrics, pollMs: 1000, batchSize: 500, leaseSeconds: 15 });
  outbox.subscribe(subs);
  return outbox;
}

// ---------------------------------------------------------------------------------------------
// 1. single-event append vs pgbench

// A time-ordered uuid made in SQL (v7-like: 48-bit ms time then random), like the uuid v7 ids our side makes.
const SQL_UUID7 = `(lpad(to_hex((extract(epoch from clock_timestamp()) * 1000)::bigint), 12, '0') || '7' || substr(md5(random()::text), 1, 19))::uuid`;
const PGBENCH_SCRIPT = `\\set n random(1, 1000000)
BEGIN;
insert into bench.accounts (id, owner, balance) values (${SQL_UUID7}, 'acct-' || (:n % 4096), 0);
insert into outbox.events (id, source, type, subject, time, data, correlation_id, causation_id, actor_id, stream_id, stream_version) values (${SQL_UUID7}, 'bench', 'bench.happened', 'acct-' || (:n % 4096), now(), ('{"n": ' || :n || '}')::jsonb, ${SQL_UUID7}::text, null, null, null, null);
COMMIT;
`;

async function pgbench(db: BenchDatabase, seconds: number, dir: string): Promise<LoopResult> {
  const script = join(dir, "append.sql");
  writeFileSync(script, PGBENCH_SCRIPT);
  const u = new URL(db.url);
  const secs = Math.max(1, Math.round(seconds));
  const args = [
    PGBENCH,
    "-h",
    u.hostname,
    "-p",
    u.port || "5432",
    "-U",
    decodeURIComponent(u.username || "postgres"),
    "-c",
    String(WRITERS),
    "-j",
    "2",
    "-T",
    String(secs),
    "-n",
    "-f",
    script,
    "-M",
    "prepared",
    db.name,
  ];
  const env = { ...process.env, PGPASSWORD: decodeURIComponent(u.password || ""), PGAPPNAME: "bench-pgbench" };
  const proc = Bun.spawn(args, { stdout: "pipe", stderr: "pipe", env });
  const killer = setTimeout(() => proc.kill(), (secs + 30) * 1000);
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(killer);
  const tps = /tps = ([\d.]+)/.exec(out);
  const processed = /number of transactions actually processed: (\d+)/.exec(out);
  if (code !== 0 || !tps) throw new Error(`pgbench failed (${code}): ${err || out}`);
  const rate = Number(tps[1]);
  return { ops: processed ? Number(processed[1]) : Math.round(rate * secs), seconds: secs, rate };
}

async function singleAppend(bench: BenchDatabase, tmp: string): Promise<Figure[]> {
  log(`1. single-event append: ${WRITERS} writers, ours vs pgbench (same SQL) vs raw postgres.js (same SQL), ${T}s each`);
  const database = connectDatabase(bench.url, { max: POOL, applicationName: "bench-ours" });
  const raw = postgres(bench.url, { max: POOL, onnotice: () => {}, connection: { application_name: "bench-raw" } });
  const outbox = outboxOn(database, []);
  const ours = (i: number) =>
    database.db.transaction(async (tx) => {
      // The domain row is written as the reference writes it, so the figure measures the outbox
      // (and drizzle's transaction), not the caller's choice of query builder.
      await rawSql(tx)`insert into bench.accounts (id, owner, balance) values (${randomUUIDv7()}::uuid, ${subjectOf(i)}, 0)`;
      await outbox.appender.append(tx, [BenchHappened.with({ n: i }, { subject: subjectOf(i) })]);
    });
  // The same two statements straight through postgres.js: what the driver and runtime cost alone.
  const direct = (i: number) =>
    raw.begin(async (tx) => {
      await tx`insert into bench.accounts (id, owner, balance) values (${randomUUIDv7()}::uuid, ${subjectOf(i)}, 0)`;
      await tx`insert into outbox.events (id, source, type, subject, time, data, correlation_id, causation_id, actor_id, stream_id, stream_version)
               values (${randomUUIDv7()}::uuid, 'bench', 'bench.happened', ${subjectOf(i)}, ${new Date().toISOString()}::timestamptz,
                       ${JSON.stringify({ n: i })}::jsonb, ${randomUUIDv7()}, null, null, null, null)`;
    });
  try {
    await runLoop({ seconds: 1, concurrency: WRITERS }, ours); // warm-up: connections, statements, JIT
    await runLoop({ seconds: 1, concurrency: WRITERS }, direct);
    // Symmetric order (A B C C B A) so no side always runs on the larger table.
    const half = Math.max(1, Math.round(T / 2));
    const p1 = await pgbench(bench, half, tmp);
    const o1 = await runLoop({ seconds: half, concurrency: WRITERS }, ours);
    const d1 = await runLoop({ seconds: half, concurrency: WRITERS }, direct);
    const d2 = await runLoop({ seconds: half, concurrency: WRITERS }, direct);
    const o2 = await runLoop({ seconds: half, concurrency: WRITERS }, ours);
    const p2 = await pgbench(bench, half, tmp);
    const [o, d, p] = [combine(o1, o2), combine(d1, d2), combine(p1, p2)];
    log(`   ours ${o.rate.toFixed(0)} tx/s, pgbench ${p.rate.toFixed(0)} tx/s, raw postgres.js ${d.rate.toFixed(0)} tx/s`);
    const name = "single-event append (domain row + event, 8 writers)";
    return [
      figure({
        name,
        value: o.rate,
        unit: "tx/s",
        reference: "pgbench -M prepared, same SQL, 8 clients",
        referenceValue: p.rate,
        target: { ratioAtLeast: 0.7 },
      }),
      figure({
        name: `${name} vs driver`,
        value: o.rate,
        unit: "tx/s",
        reference: "raw postgres.js sql.begin (BEGIN awaited), same SQL, 8 writers",
        referenceValue: d.rate,
        target: {},
      }),
    ];
  } finally {
    await outbox.stop();
    await raw.end({ timeout: 5 });
    await database.close();
  }
}

// ---------------------------------------------------------------------------------------------
// 2. batched append vs raw unnest insert

async function batchedAppend(bench: BenchDatabase): Promise<Figure> {
  log(`2. batched append: ${BATCH_EVENTS} events per call, ${BATCH_WRITERS} writers, ours vs raw postgres.js unnest, ${T}s each`);
  const database = connectDatabase(bench.url, { max: POOL, applicationName: "bench-ours" });
  const outbox = outboxOn(database, []);
  const raw = postgres(bench.url, { max: POOL, onnotice: () => {}, connection: { application_name: "bench-raw" } });
  let seq = 0;
  const ours = () => {
    const events = Array.from({ length: BATCH_EVENTS }, () => {
      const n = seq++;
      return BenchHappened.with({ n }, { subject: subjectOf(n) });
    });
    return database.db.transaction((tx) => outbox.appender.append(tx, events));
  };
  const reference = () => {
    const ids: string[] = [];
    const subjects: string[] = [];
    const data: string[] = [];
    for (let i = 0; i < BATCH_EVENTS; i++) {
      const n = seq++;
      ids.push(randomUUIDv7());
      subjects.push(subjectOf(n));
      data.push(JSON.stringify({ n }));
    }
    const time = new Date().toISOString();
    const correlation = randomUUIDv7();
    const fill = <T>(v: T) => new Array<T>(BATCH_EVENTS).fill(v);
    const nulls = fill(null);
    return raw.begin(
      (tx) => tx`
      insert into outbox.events (id, source, type, subject, time, data, correlation_id, causation_id, actor_id, stream_id, stream_version)
      select * from unnest(${ids}::uuid[], ${fill("bench")}::text[], ${fill("bench.happened")}::text[], ${subjects}::text[],
        ${fill(time)}::text[]::timestamptz[], ${data}::text[]::jsonb[], ${fill(correlation)}::text[], ${nulls}::uuid[], ${nulls}::text[],
        ${nulls}::text[], ${nulls}::int[])`,
    );
  };
  try {
    await runLoop({ seconds: 0.5, concurrency: BATCH_WRITERS }, ours);
    await runLoop({ seconds: 0.5, concurrency: BATCH_WRITERS }, reference);
    const r1 = await runLoop({ seconds: T / 2, concurrency: BATCH_WRITERS }, reference);
    const o = await runLoop({ seconds: T, concurrency: BATCH_WRITERS }, ours);
    const r2 = await runLoop({ seconds: T / 2, concurrency: BATCH_WRITERS }, reference);
    const ref = combine(r1, r2);
    const oursRate = o.rate * BATCH_EVENTS;
    const refRate = ref.rate * BATCH_EVENTS;
    log(`   ours ${oursRate.toFixed(0)} events/s, raw ${refRate.toFixed(0)} events/s`);
    return figure({
      name: `batched append (${BATCH_EVENTS}/call, ${BATCH_WRITERS} writers)`,
      value: oursRate,
      unit: "events/s",
      reference: "raw postgres.js unnest insert, same rows",
      referenceValue: refRate,
      target: { ratioAtLeast: 0.7, valueAtLeast: 50_000 },
    });
  } finally {
    await outbox.stop();
    await raw.end({ timeout: 5 });
    await database.close();
  }
}

// ---------------------------------------------------------------------------------------------
// 3. delivery throughput of a partitioned subscription catching up

/** rowPerEvent is the delivery phase's handler: one row of the event in `bench.<table>`, a prepared insert on the partition's transaction. */
function rowPerEvent(table: "effects" | "effects_in_order") {
  const text = `insert into bench.${table} (event_id, subject, n) values ($1::uuid, $2, $3)`;
  return async (event: EventEnvelope, ctx: HandlerContext): Promise<void> => {
    await ctx.sql.unsafe(text, [event.id, event.subject, (event.data as { n: number }).n], { prepare: true });
  };
}

/** drainRate starts `outbox`, waits (bounded) until its subscription has handled `n` events, stops it, and returns events/s. */
async function drainRate(outbox: Outbox, metrics: ReturnType<typeof countingMetrics>, n: number): Promise<number> {
  try {
    const started = nowMs();
    await outbox.start();
    await waitUntil(() => metrics.count >= n || metrics.failures > 0, DRAIN_CAP_MS, 10);
    return metrics.count / ((nowMs() - started) / 1000);
  } finally {
    await outbox.stop();
  }
}

async function delivery(bench: BenchDatabase): Promise<Figure[]> {
  const N = DELIVERY_EVENTS;
  log(`3. delivery: pre-append ${N} events, then a ${PARTITIONS}-partition subscription writes one row per event`);
  const database = connectDatabase(bench.url, { max: POOL, applicationName: "bench-ours" });
  const raw = postgres(bench.url, { max: POOL, onnotice: () => {}, connection: { application_name: "bench-raw" } });
  const metrics = countingMetrics();
  const outbox = outboxOn(
    database,
    [
      {
        name: "bench.deliver",
        on: [BenchDelivered],
        partitions: PARTITIONS,
        concurrency: DELIVERY_CONCURRENCY,
        handler: rowPerEvent("effects"),
      },
    ],
    metrics,
  );
  try {
    const chunk = 1000;
    const loaded = await runLoop({ seconds: DRAIN_CAP_MS / 1000, concurrency: 4, maxOps: Math.ceil(N / chunk) }, (i) => {
      const events = Array.from({ length: Math.min(chunk, N - i * chunk) }, (_, k) => {
        const n = i * chunk + k;
        return BenchDelivered.with({ n }, { subject: subjectOf(n) });
      });
      return database.db.transaction((tx) => outbox.appender.append(tx, events));
    });
    if (loaded.ops * chunk < N) throw new Error(`pre-append of ${N} events did not finish within ${DRAIN_CAP_MS / 1000}s`);
    log(`   pre-appended ${N} events in ${loaded.seconds.toFixed(1)}s`);

    // References: the rows the handler writes, inserted raw by 4 connections in transactions of
    // 500 rows: in one unnest statement (the ceiling), and one statement per row as a handler
    // does (the floor that any per-event handler pays, whatever the outbox does).
    await raw`checkpoint`;
    const ref = await runLoop({ seconds: DRAIN_CAP_MS / 1000, concurrency: PARTITIONS, maxOps: Math.ceil(N / 500) }, (i) => {
      const count = Math.min(500, N - i * 500);
      const ids = Array.from({ length: count }, () => randomUUIDv7());
      const subjects = Array.from({ length: count }, (_, k) => subjectOf(i * 500 + k));
      const ns = Array.from({ length: count }, (_, k) => i * 500 + k);
      return raw.begin(
        (tx) => tx`insert into bench.effects_ref (event_id, subject, n) select * from unnest(${ids}::uuid[], ${subjects}::text[], ${ns}::int[])`,
      );
    });
    const refRate = Math.min(N, ref.ops * 500) / ref.seconds;
    const perRowN = Math.min(N, Math.round(50_000 * S));
    const perRow = await runLoop({ seconds: DRAIN_CAP_MS / 1000, concurrency: PARTITIONS, maxOps: Math.ceil(perRowN / 500) }, (i) =>
      raw.begin(async (tx) => {
        for (let k = 0; k < 500; k++)
          await tx`insert into bench.effects_ref (event_id, subject, n) values (${randomUUIDv7()}, ${subjectOf(i * 500 + k)}, ${i * 500 + k})`;
      }),
    );
    const perRowRate = perRow.rate * 500;

    // Fresh statistics, as autovacuum would have gathered on a table that grew this much.
    await raw`analyze outbox.events`;
    await raw`checkpoint`;
    const cpu0 = process.cpuUsage();
    const started = nowMs();
    await outbox.start();
    const caughtUp = await waitUntil(() => metrics.count >= N || metrics.failures > 0, DRAIN_CAP_MS, 10);
    const seconds = (nowMs() - started) / 1000;
    await outbox.stop();
    const [counted] = await raw<{ rows: number }[]>`select count(*)::int as rows from bench.effects`;
    const rows = counted?.rows ?? 0;
    const cpu = process.cpuUsage(cpu0);
    const rate = metrics.count / seconds;
    log(
      `   delivered ${metrics.count} in ${seconds.toFixed(2)}s = ${rate.toFixed(0)} events/s, this process at ${((cpu.user + cpu.system) / 1e4 / seconds).toFixed(0)}% CPU (raw unnest insert of the same rows ${refRate.toFixed(0)} rows/s, one insert per row ${perRowRate.toFixed(0)} rows/s)`,
    );
    const notes: string[] = [];
    if (metrics.failures) notes.push(`${metrics.failures} handler failures (BENCH_LOG_LEVEL=warn shows them)`);
    if (!caughtUp || metrics.count < N) notes.push(`not caught up within ${DRAIN_CAP_MS / 1000}s: ${metrics.count}/${N}`);
    if (rows !== metrics.count) notes.push(`effects rows ${rows} != processed ${metrics.count}`);
    const note = notes.length ? { note: notes.join("; ") } : {};

    // The same backlog through a second subscription whose handler does nothing: what the
    // outbox's own reading, checkpointing and dispatching cost, without the handler's write.
    const bare = countingMetrics();
    const noop = outboxOn(database, [{ name: "bench.deliver-noop", on: [BenchDelivered], partitions: PARTITIONS, handler: async () => {} }], bare);
    const bareRate = await drainRate(noop, bare, N);
    log(`   no-op handler: ${bareRate.toFixed(0)} events/s`);

    // The same backlog and handler, one event after another in each partition (no concurrency).
    const inOrder = countingMetrics();
    const sequential = outboxOn(
      database,
      [
        {
          name: "bench.deliver-in-order",
          on: [BenchDelivered],
          partitions: PARTITIONS,
          handler: rowPerEvent("effects_in_order"),
        },
      ],
      inOrder,
    );
    const inOrderRate = await drainRate(sequential, inOrder, N);
    log(`   one event at a time per partition: ${inOrderRate.toFixed(0)} events/s`);

    // The same backlog through handleBatch: still one row per event, in the checkpoint's
    // transaction, but one unnest insert per batch instead of one statement per event.
    const batched = countingMetrics();
    const projector = outboxOn(
      database,
      [
        {
          name: "bench.deliver-batch",
          on: [BenchDelivered],
          partitions: PARTITIONS,
          handleBatch: async (events, ctx) => {
            await ctx.sql`insert into bench.effects_batch (event_id, subject, n)
              select * from unnest(${events.map((e) => e.id)}::uuid[], ${events.map((e) => e.subject)}::text[], ${events.map((e) => (e.data as { n: number }).n)}::int[])`;
          },
        },
      ],
      batched,
    );
    const batchRate = await drainRate(projector, batched, N);
    const [batchRows] = await raw<{ rows: number }[]>`select count(*)::int as rows from bench.effects_batch`;
    log(`   handleBatch (unnest per batch): ${batchRate.toFixed(0)} events/s, ${batchRows?.rows ?? 0} rows`);
    return [
      figure({
        name: `delivery catch-up (${N} events, ${PARTITIONS} partitions x ${DELIVERY_CONCURRENCY} subjects at once, 1 insert/event)`,
        value: rate,
        unit: "events/s",
        reference: "raw unnest insert of the same rows, 4 conns (ceiling)",
        referenceValue: refRate,
        target: { valueAtLeast: 20_000 },
        ...note,
      }),
      figure({
        name: "delivery catch-up vs per-row insert floor",
        value: rate,
        unit: "events/s",
        reference: "raw 1 insert/row, 500 rows/tx, 4 conns",
        referenceValue: perRowRate,
        target: {},
        ...note,
      }),
      figure({
        name: `delivery catch-up, one event at a time per partition (${PARTITIONS} partitions, 1 insert/event)`,
        value: inOrderRate,
        unit: "events/s",
        reference: "raw 1 insert/row, 500 rows/tx, 4 conns",
        referenceValue: perRowRate,
        target: {},
        ...(inOrder.count < N ? { note: `not caught up: ${inOrder.count}/${N}` } : {}),
      }),
      figure({
        name: `delivery catch-up, handleBatch (${PARTITIONS} partitions, 1 row/event via unnest)`,
        value: batchRate,
        unit: "events/s",
        reference: "raw unnest insert of the same rows, 4 conns (ceiling)",
        referenceValue: refRate,
        target: {},
        ...((batchRows?.rows ?? 0) !== N ? { note: `effects rows ${batchRows?.rows ?? 0} != ${N}` } : {}),
      }),
      figure({
        name: "delivery catch-up, no-op handler (outbox cost alone)",
        value: bareRate,
        unit: "events/s",
        reference: "raw unnest insert of the same rows, 4 conns (ceiling)",
        referenceValue: refRate,
        target: {},
        ...(bare.count < N ? { note: `not caught up: ${bare.count}/${N}` } : {}),
      }),
    ];
  } finally {
    await outbox.stop();
    await raw.end({ timeout: 5 });
    await database.close();
  }
}

// ---------------------------------------------------------------------------------------------
// 4. commit-to-handler latency at a steady rate

async function latency(bench: BenchDatabase): Promise<Figure[]> {
  // The first second is warm-up at the same pace (pool connections, prepared statements, JIT,
  // the first analyze of a young table), not measured.
  const warm = Math.round(LATENCY_RATE * LATENCY_WARMUP_SECONDS);
  const total = warm + LATENCY_RATE * LATENCY_SECONDS;
  log(`4. latency: ${LATENCY_RATE} single-event appends/s for ${LATENCY_WARMUP_SECONDS}s warm-up + ${LATENCY_SECONDS}s, ${PARTITIONS}-partition subscription`);
  const database = connectDatabase(bench.url, { max: POOL, applicationName: "bench-ours" });
  // The phase before wrote hundreds of thousands of rows: vacuum the log now (what autovacuum
  // would soon start doing in the middle of this phase) and write the dirty pages out, as the
  // delivery phase does before it measures, so that this phase's commits do not queue behind
  // the previous phase's I/O.
  await database.sql`vacuum (analyze) outbox.events`;
  await database.sql`checkpoint`;
  // Whichever side comes second (commit returning, or the handler seeing the event) computes the latency.
  const committedAt = new Map<string, number>();
  const seenAt = new Map<string, number>();
  const latencies: number[] = [];
  const commitLatencies: number[] = [];
  let early = 0;
  const outbox = outboxOn(database, [
    {
      name: "bench.latency",
      on: [BenchPaced],
      partitions: PARTITIONS,
      startFrom: "now",
      async handler(event, ctx) {
        const t = wallMs();
        if ((event.data as { n: number }).n >= warm) {
          const c = committedAt.get(event.id);
          if (c !== undefined) {
            latencies.push(Math.max(0, t - c));
            committedAt.delete(event.id);
          } else if (!seenAt.has(event.id)) seenAt.set(event.id, t);
        }
        await recordEffect("latency_effects", ctx.tx, event);
      },
    },
  ]);
  try {
    await outbox.start();
    let sent = 0;
    let inflight = 0;
    let failed = 0;
    const send = (n: number) => {
      inflight++;
      const id = randomUUIDv7();
      const sentAt = wallMs();
      database.db
        .transaction((tx) => outbox.appender.append(tx, [BenchPaced.with({ n, sentAt }, { id, subject: subjectOf(n) })]))
        .then(
          () => {
            if (n < warm) return;
            const c = wallMs();
            commitLatencies.push(c - sentAt);
            const s = seenAt.get(id);
            if (s !== undefined) {
              // The handler ran before the commit returned here: the latency is at most 0.
              early++;
              latencies.push(Math.max(0, s - c));
              seenAt.delete(id);
            } else committedAt.set(id, c);
          },
          () => failed++,
        )
        .finally(() => inflight--);
    };
    const started = nowMs();
    for (;;) {
      const elapsed = nowMs() - started;
      if (elapsed >= (LATENCY_WARMUP_SECONDS + LATENCY_SECONDS) * 1000) break;
      const due = Math.min(total, Math.floor((elapsed / 1000) * LATENCY_RATE));
      while (sent < due && inflight < 200) send(sent++);
      await Bun.sleep(1);
    }
    await waitUntil(() => inflight === 0, DRAIN_CAP_MS);
    const measured = sent - warm;
    await waitUntil(() => latencies.length >= measured - failed, 10_000);
    const achieved = sent / (LATENCY_WARMUP_SECONDS + LATENCY_SECONDS);
    const p50 = percentile(latencies, 50);
    const p99 = percentile(latencies, 99);
    const c50 = percentile(commitLatencies, 50);
    const c99 = percentile(commitLatencies, 99);
    log(
      `   ${latencies.length}/${measured} measured events delivered (${early} seen before commit returned), P50 ${p50.toFixed(2)} ms, P99 ${p99.toFixed(2)} ms; append commit P50 ${c50.toFixed(2)} P99 ${c99.toFixed(2)} ms`,
    );
    const notes: string[] = [];
    if (latencies.length < measured) notes.push(`${measured - latencies.length} of ${measured} events not seen by the handler`);
    if (failed) notes.push(`${failed} appends failed`);
    if (achieved < LATENCY_RATE * 0.95) notes.push(`achieved ${achieved.toFixed(0)} events/s`);
    const note = notes.length ? { note: notes.join("; ") } : {};
    return [
      figure({
        name: `commit-to-handler latency P50 @ ${LATENCY_RATE}/s`,
        value: p50,
        unit: "ms",
        reference: "append send-to-commit P50 (same run)",
        referenceValue: c50,
        target: {},
        ...note,
      }),
      figure({
        name: `commit-to-handler latency P99 @ ${LATENCY_RATE}/s`,
        value: p99,
        unit: "ms",
        reference: "append send-to-commit P99 (same run)",
        referenceValue: c99,
        target: { valueBelow: 20 },
        ...note,
      }),
    ];
  } finally {
    await outbox.stop();
    await database.close();
  }
}

// ---------------------------------------------------------------------------------------------
// 5. pg-boss publish-and-consume, Emmett appends

async function countRows(raw: postgres.Sql): Promise<number> {
  const [r] = await raw<{ n: number }[]>`select count(*)::int as n from bench.relay_effects`;
  return r!.n;
}

/** publishAndConsume: WRITERS publishers send `jobs` singly while consumers drain; time to the last committed effect. */
async function publishAndConsume(
  raw: postgres.Sql,
  jobs: number,
  publish: (n: number) => Promise<unknown>,
): Promise<{ rate: number; done: number; publishRate: number; note?: string }> {
  const started = nowMs();
  const pub = await runLoop({ seconds: DRAIN_CAP_MS / 1000, concurrency: WRITERS, maxOps: jobs }, publish);
  let done = 0;
  const ok = await waitUntil(async () => (done = await countRows(raw)) >= jobs, Math.max(1000, DRAIN_CAP_MS - (nowMs() - started)), 10);
  const seconds = (nowMs() - started) / 1000;
  const note = ok ? undefined : `only ${done}/${jobs} consumed (${pub.ops} published) within ${DRAIN_CAP_MS / 1000}s`;
  return { rate: done / seconds, done, publishRate: pub.rate, ...(note ? { note } : {}) };
}

async function versusPgBoss(bench: BenchDatabase): Promise<Figure> {
  const N = RELAY_JOBS;
  log(`5a. publish-and-consume ${N} singly (${WRITERS} publishers), consumers batch 500 x ${PARTITIONS}, 1 row each: pg-boss vs ours`);
  const bossDb = await createBenchDatabase({ suffix: "pgboss", migrate: false });
  const bossRaw = postgres(bossDb.url, { max: 2, onnotice: () => {} });
  await bossRaw.unsafe(BOSS_DDL);
  // pg-boss in its faster setting for this workload: polling every 0.5 s with burst fetching.
  // With LISTEN/NOTIFY on (useListenNotify + queue notify) each send notifies inside its own
  // transaction, which serialises the commits: sends ran at about half the rate here.
  const boss = new PgBoss({
    connectionString: bossDb.url,
    schema: "pgboss",
    max: POOL,
    schedule: false,
    useListenNotify: false,
    application_name: "bench-pgboss",
  });
  boss.on("error", (err) => log(`   pg-boss error: ${err}`));
  let bossResult: { rate: number; done: number; publishRate: number; note?: string };
  try {
    await boss.start();
    await boss.createQueue("bench-relay");
    await boss.work<
      { n: number; subject: string },
      unknown,
      { batchSize: number; localConcurrency: number; transactional: true; pollingIntervalSeconds: number; burstWhenBatchFull: true }
    >(
      "bench-relay",
      { batchSize: 500, localConcurrency: PARTITIONS, transactional: true, pollingIntervalSeconds: 0.5, burstWhenBatchFull: true },
      async (jobs, tx) => {
        for (const job of jobs)
          await tx.executeSql("insert into bench.relay_effects (event_id, subject, n) values ($1::uuid, $2, $3)", [job.id, job.data.subject, job.data.n]);
      },
    );
    // warm-up outside the measured count: a few jobs, then clear their rows
    await Promise.all(Array.from({ length: 20 }, (_, n) => boss.send("bench-relay", { n, subject: subjectOf(n) })));
    await waitUntil(async () => (await countRows(bossRaw)) >= 20, 10_000);
    await bossRaw`truncate bench.relay_effects`;
    bossResult = await publishAndConsume(bossRaw, N, (n) => boss.send("bench-relay", { n, subject: subjectOf(n) }));
  } finally {
    await boss.stop({ graceful: true, timeout: 5000, close: true }).catch((err) => log(`   pg-boss stop: ${err}`));
    await bossRaw.end({ timeout: 2 });
    await bossDb.drop();
  }
  log(`   pg-boss ${bossResult.rate.toFixed(0)} jobs/s end to end (sends alone ${bossResult.publishRate.toFixed(0)}/s)`);

  const database = connectDatabase(bench.url, { max: POOL, applicationName: "bench-ours" });
  const raw = postgres(bench.url, { max: 2, onnotice: () => {} });
  const outbox = outboxOn(database, [
    {
      name: "bench.relay",
      on: [BenchRelayed],
      partitions: PARTITIONS,
      batchSize: 500,
      async handler(event, ctx) {
        await recordEffect("relay_effects", ctx.tx, event);
      },
    },
  ]);
  let ours: { rate: number; done: number; publishRate: number; note?: string };
  const publish = (n: number) => database.db.transaction((tx) => outbox.appender.append(tx, [BenchRelayed.with({ n }, { subject: subjectOf(n) })]));
  try {
    await outbox.start();
    await Promise.all(Array.from({ length: 20 }, (_, n) => publish(n)));
    await waitUntil(async () => (await countRows(raw)) >= 20, 10_000);
    await raw`truncate bench.relay_effects`;
    ours = await publishAndConsume(raw, N, publish);
  } finally {
    await outbox.stop();
    await raw.end({ timeout: 2 });
    await database.close();
  }
  log(`   ours ${ours.rate.toFixed(0)} events/s end to end (appends alone ${ours.publishRate.toFixed(0)}/s)`);
  const notes = [ours.note && `ours: ${ours.note}`, bossResult.note && `pg-boss: ${bossResult.note}`].filter(Boolean);
  return figure({
    name: `publish-and-consume (${N} singly, 8 publishers, 4 consumers, 1 row/event)`,
    value: ours.rate,
    unit: "events/s",
    reference: "pg-boss 12.35.0 send + work(batch 500, x4, transactional)",
    referenceValue: bossResult.rate,
    target: { ratioAbove: 1 },
    ...(notes.length ? { note: notes.join("; ") } : {}),
  });
}

async function versusEmmett(bench: BenchDatabase): Promise<Figure[]> {
  log(`5b. single-event appends, ${WRITERS} writers: Emmett PostgreSQL event store vs ours, ${T}s each`);
  const emmettDb = await createBenchDatabase({ suffix: "emmett", migrate: false });
  const store = getPostgreSQLEventStore(emmettDb.url);
  const database = connectDatabase(bench.url, { max: POOL, applicationName: "bench-ours" });
  const outbox = outboxOn(database, []);
  const emmett = (n: number) => store.appendToStream(`account-${randomUUIDv7()}`, [{ type: "AccountOpened", data: { n, subject: subjectOf(n) } }]);
  const ours = (n: number) => database.db.transaction((tx) => outbox.appender.append(tx, [BenchHappened.with({ n }, { subject: subjectOf(n) })]));
  const oursStream = (n: number) =>
    database.db.transaction((tx) => outbox.appender.appendToStream(tx, `account-${randomUUIDv7()}`, 0, [BenchHappened.with({ n }, { subject: subjectOf(n) })]));
  try {
    await runLoop({ seconds: 0.5, concurrency: WRITERS }, emmett); // also creates Emmett's schema
    await runLoop({ seconds: 0.5, concurrency: WRITERS }, ours);
    await runLoop({ seconds: 0.5, concurrency: WRITERS }, oursStream);
    const e1 = await runLoop({ seconds: T / 2, concurrency: WRITERS }, emmett);
    const o = await runLoop({ seconds: T / 2, concurrency: WRITERS }, ours);
    const os = await runLoop({ seconds: T / 2, concurrency: WRITERS }, oursStream);
    const e2 = await runLoop({ seconds: T / 2, concurrency: WRITERS }, emmett);
    const e = combine(e1, e2);
    log(`   ours append ${o.rate.toFixed(0)}/s, ours appendToStream ${os.rate.toFixed(0)}/s, Emmett appendToStream ${e.rate.toFixed(0)}/s`);
    return [
      figure({
        name: "single-event append (event only, 8 writers)",
        value: o.rate,
        unit: "tx/s",
        reference: "Emmett 0.42 appendToStream (new stream), 8 writers",
        referenceValue: e.rate,
        target: { ratioAbove: 1 },
      }),
      figure({
        name: "single-event appendToStream (expected version, 8 writers)",
        value: os.rate,
        unit: "tx/s",
        reference: "Emmett 0.42 appendToStream (new stream), 8 writers",
        referenceValue: e.rate,
        target: { ratioAbove: 1 },
      }),
    ];
  } finally {
    await outbox.stop();
    await database.close();
    await store.close().catch(() => {});
    await emmettDb.drop();
  }
}

// ---------------------------------------------------------------------------------------------

const tmp = mkdtempSync(join(tmpdir(), "bench-outbox-"));

async function main(): Promise<number> {
  if (ONLY.length === 0) {
    log("outbox benchmark: no phase selected by BENCH_ONLY; skipped");
    return 0;
  }
  const base = baseUrl();
  const started = nowMs();
  const figures: Figure[] = [];
  const admin = postgres(base, { max: 1, onnotice: () => {} });
  try {
    const meta = await runMeta("outbox", admin);
    log(`outbox benchmark on ${meta.pgVersion?.split(",")[0]}, ${meta.cpuCount} CPUs, ${T}s per phase`);
    const bench = await createBenchDatabase();
    const setup = postgres(bench.url, { max: 1, onnotice: () => {} });
    await setup.unsafe(BENCH_DDL);
    await setup.end();

    const checkpoint = async () => {
      const s = postgres(bench.url, { max: 1, onnotice: () => {} });
      await s`checkpoint`;
      await s.end();
    };
    const phases: [string, () => Promise<Figure | Figure[]>][] = [
      ["append", () => singleAppend(bench, tmp)],
      ["batch", () => batchedAppend(bench)],
      ["delivery", () => delivery(bench)],
      ["latency", () => latency(bench)],
      ["pgboss", () => versusPgBoss(bench)],
      ["emmett", () => versusEmmett(bench)],
    ];
    for (const [name, run] of phases) {
      if (!ONLY.includes(name)) continue;
      figures.push(...[await run()].flat());
      await checkpoint(); // each phase starts with no dirty buffers left by the one before
    }

    console.log(
      `\noutbox benchmark: ${meta.date}, commit ${meta.gitCommit?.slice(0, 12) ?? "?"}${meta.gitDirty ? " (dirty)" : ""}, ${meta.cpuCount} CPUs, ${meta.pgVersion?.split(" on ")[0]}, BENCH_SECONDS=${T}\n`,
    );
    console.log(formatTable(figures));
    const path = writeResults(meta, figures, { totalSeconds: Math.round((nowMs() - started) / 100) / 10 });
    const targeted = figures.filter((f) => f.target !== INFO);
    const missed = targeted.filter((f) => !f.pass).length;
    console.log(
      `\n${targeted.length - missed}/${targeted.length} targets met; results in ${path} and bench/results/outbox-latest.json (${((nowMs() - started) / 1000).toFixed(0)}s)`,
    );
    return missed && process.env.BENCH_STRICT === "1" ? 2 : 0;
  } finally {
    await admin.end({ timeout: 2 });
    await dropBenchDatabases();
    rmSync(tmp, { recursive: true, force: true });
  }
}

const PHASES = ["append", "batch", "delivery", "latency", "pgboss", "emmett"];
if (ONLY && !ONLY.some((p) => PHASES.includes(p))) {
  log(`BENCH_ONLY=${process.env.BENCH_ONLY} names none of this benchmark's phases (${PHASES.join(", ")}); skipped`);
  process.exit(0);
}

let stopping = false;
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    log(`${sig}: dropping bench databases`);
    rmSync(tmp, { recursive: true, force: true });
    void dropBenchDatabases().finally(() => process.exit(130));
  });
}

main().then(
  (code) => process.exit(code),
  async (err) => {
    console.error(err);
    await dropBenchDatabases();
    process.exit(1);
  },
);
