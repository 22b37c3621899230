/**
 * Analytics benchmark (issue 10), over real HTTP on loopback:
 *
 * - ingest: sustained `POST /analytics/events` with batches of 500 from 4 clients for
 *   BENCH_SECONDS (default 6; the issue's figure is for 30), the aggregating consumers running in
 *   the server's process; the clients run in a process of their own (bench/analytics/client.ts,
 *   bodies made before the clock starts, as wrk does for the http benchmark); beside it, in the same run, a raw `unnest` insert of the same rows (500 per
 *   statement, 4 connections) into a plain table with the clickstream's columns, a primary key on
 *   the event id and an index on the batch id (`on conflict (event_id) do nothing`).
 * - latency: background load at BENCH_ANALYTICS_RATE events/s (default 20,000) in batches of 500
 *   from the client process, and a probe purchase every 100 ms in a category of its own: from the probe's POST to its
 *   revenue window being visible, P50/P95/P99.
 * - ingest-api: the same closed-loop ingestion against a second server on the same database with
 *   ROLES=api (no consumers, no background tasks), after the phases above (its batches then wait
 *   for no consumer). Issue 10's target is judged on this figure: like the raw insert, nothing
 *   else runs beside it. The figure with the consumers running stays, for information.
 *
 * `bun bench/analytics.ts` (or `BENCH_ONLY=analytics bun run bench`); BENCH_SECONDS=30 for the
 * issue's figure; BENCH_ONLY=ingest-api (or ingest, latency; a comma list) runs only those phases. The
 * raw insert runs right after each ingestion phase (into a table of its own), and each ingestion
 * figure is set beside the raw run next to it: this machine's speed drifts within minutes.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { randomUUIDv7 } from "bun";
import pino from "pino";
import type postgres from "postgres";
import { loadConfig } from "../src/config.ts";
import { createServer } from "../src/server.ts";
import { batchOf } from "./analytics/events.ts";
import {
  createBenchDatabase,
  dropBenchDatabases,
  type Figure,
  figure,
  formatTable,
  log,
  percentile,
  phaseSeconds,
  type RunMeta,
  runLoop,
  runMeta,
  selectedPhases,
  serverEnv,
  waitUntil,
  writeResults,
} from "./support.ts";

const BATCH = 500;
const CLIENTS = 4;
const RATE = Number(process.env.BENCH_ANALYTICS_RATE ?? 20_000);
const KEY = `bench-key-${crypto.randomUUID()}`;

/** ClientRun is what the client process reports. */
interface ClientRun {
  sent: number;
  failed: number;
  firstError: string;
  seconds: number;
}

/**
 * startClients starts the load clients in a process of their own (see bench/analytics/client.ts):
 * `ready` resolves once their bodies are made and they start sending, `done` with their report.
 */
function startClients(opts: { url: string; mode: "closed" | "open"; seconds: number; clients?: number; rate?: number; seed?: number }) {
  const args = JSON.stringify({ ...opts, key: KEY, batch: BATCH });
  const proc = Bun.spawn([process.execPath, join(import.meta.dir, "analytics", "client.ts"), args], { stdout: "pipe", stderr: "pipe" });
  const killer = setTimeout(() => proc.kill("SIGKILL"), (opts.seconds + 60) * 1000);
  let out = "";
  let onReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  const done = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of proc.stdout) {
      out += decoder.decode(chunk, { stream: true });
      if (out.startsWith("ready\n")) onReady();
    }
    const [err, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
    clearTimeout(killer);
    onReady();
    if (code !== 0) throw new Error(`the load clients failed (${code}): ${err || out}`);
    const run = JSON.parse(out.slice(out.indexOf("\n") + 1)) as ClientRun;
    if (run.failed > 0) throw new Error(`ingest: ${run.failed} of ${run.sent} requests refused, the first: ${run.firstError}`);
    return run;
  })();
  return { ready, done };
}

/** Server is what a phase needs of a started server: its port and its database's pool. */
type Server = { port: number; database: { sql: postgres.Sql } };

/** cpuTicks is a process's user + system CPU time in clock ticks (1/100 s), 0 once it is gone. */
function cpuTicks(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return Number(f[11]) + Number(f[12]);
  } catch {
    return 0;
  }
}

const PHASES = selectedPhases("analytics", ["ingest", "latency", "ingest-api"]);
const db = await createBenchDatabase({ suffix: "analytics" });
const env = serverEnv(db.url, { ANALYTICS_INGEST_KEY: KEY, DATABASE_POOL_MAX: "10" });
const seconds = phaseSeconds();

/** IngestRun is one closed-loop ingestion phase: events/s, and CPU per event of the server process and of the database's backends. */
interface IngestRun {
  rate: number;
  ingested: number;
  seconds: number;
  appUs: number;
  pgUs: number;
}

/** ingestPhase runs the closed-loop ingestion against `server` (in this process) for `seconds`. */
async function ingestPhase(server: Server, label: string): Promise<IngestRun> {
  const url = `http://127.0.0.1:${server.port}/api/v1/analytics/events`;
  const sql = server.database.sql;
  log(`${label}: ${CLIENTS} clients (a process of their own), batches of ${BATCH}, ${seconds}s`);
  const backends = async () => (await sql<{ pid: number }[]>`select pid from pg_stat_activity where datname = current_database()`).map((r) => r.pid);
  const pgBefore = new Map((await backends()).map((pid) => [pid, cpuTicks(pid)]));
  const appBefore = process.cpuUsage();
  const run = await startClients({ url, mode: "closed", seconds, clients: CLIENTS }).done;
  const appCpu = process.cpuUsage(appBefore);
  let pgTicks = 0;
  for (const pid of new Set([...pgBefore.keys(), ...(await backends())])) pgTicks += cpuTicks(pid) - (pgBefore.get(pid) ?? 0);
  const ingested = run.sent * BATCH;
  const rate = ingested / run.seconds;
  log(`${label}: ${rate.toFixed(0)} events/s`);
  return { rate, ingested, seconds: run.seconds, appUs: (appCpu.user + appCpu.system) / ingested, pgUs: (pgTicks * 10_000) / ingested };
}

/**
 * rawInsert is the reference: the same rows, raw, one unnest statement per 500, into a plain
 * (unpartitioned) table with the clickstream's columns and the two indexes the job needs: the
 * unique event id and the batch id. Returns events/s.
 */
async function rawInsert(sql: postgres.Sql, table = "raw_clickstream"): Promise<number> {
  const t = sql(table);
  await sql`create table public.${t} (like analytics.clickstream including defaults including constraints)`;
  await sql`alter table public.${t} add primary key (event_id)`;
  await sql`create index on public.${t} (batch_id)`;
  const rows = Array.from({ length: 64 }, (_, i) => batchOf(BATCH, i)).map((b) =>
    b.map((e, i) => ({
      user: e.userId as string,
      session: e.sessionId as string,
      type: e.eventType as string,
      time: e.clientTime as string,
      i,
      features: JSON.stringify({ hour: 1, dayOfWeek: 1, weekend: false, businessHours: true, highValue: false, deviceCategory: "MOBILE" }),
    })),
  );
  let m = 0;
  const raw = await runLoop({ seconds, concurrency: CLIENTS }, async () => {
    const b = rows[m++ % rows.length]!;
    const batch = randomUUIDv7();
    await sql`
      insert into public.${t} (event_id, batch_id, batch_index, user_id, session_id, event_type, event_time, received_at, version, source, features)
      select gen_random_uuid(), ${batch}::uuid, u.i, u.user_id, u.session_id, u.event_type, u.t::timestamptz, now(), '1.0', 'raw', u.f::jsonb
      from unnest(${b.map((r) => r.user)}::text[], ${b.map((r) => r.session)}::text[], ${b.map((r) => r.type)}::text[], ${b.map((r) => r.time)}::text[],
                  ${b.map((r) => r.i)}::int[], ${b.map((r) => r.features)}::text[]) as u(user_id, session_id, event_type, t, i, f)
      on conflict (event_id) do nothing`;
  });
  return (raw.ops * BATCH) / raw.seconds;
}

const figures: Figure[] = [];
const rawReference = `raw unnest insert, ${BATCH} per statement, ${CLIENTS} connections`;
let rawRate = Number.NaN;
let meta: RunMeta | undefined;
let stop: (() => Promise<void>) | undefined;
try {
  if (PHASES.includes("ingest") || PHASES.includes("latency")) {
    const server = await createServer(loadConfig(env), { log: pino({ level: "silent" }) });
    stop = () => server.stop();
    const port = server.listen();
    const url = `http://127.0.0.1:${port}/api/v1/analytics/events`;
    const sql = server.database.sql;
    const post = async (events: unknown[]) => {
      const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json", "x-api-key": KEY }, body: JSON.stringify({ events }) });
      if (res.status !== 202) throw new Error(`ingest: ${res.status} ${await res.text()}`);
      await res.arrayBuffer();
    };

    if (PHASES.includes("ingest")) {
      // The client process sends the same batches as rawInsert's rows (seeds 0-63), each event with a fresh eventId.
      const ingest = await ingestPhase({ port, database: server.database }, "ingest (consumers running)");
      const ingestStarted = performance.now() - ingest.seconds * 1000;
      log("waiting for the consumer to catch up");
      // Caught up once both consumers have recorded every batch announced (each records a batch in
      // the transaction that applies it): counts over a few hundred rows, where counting the
      // clickstream's rows took a tenth of a second of a core every poll, beside the consumers it waited for.
      const caughtUp = await waitUntil(
        async () => {
          const [r] = await sql<{ n: number; windows: number; sessions: number }[]>`
            select count(*)::int as n,
              (select count(*)::int from analytics.consumer_batches where consumer = 'analytics.aggregate') as windows,
              (select count(*)::int from analytics.consumer_batches where consumer = 'analytics.sessions') as sessions
            from outbox.events where type = 'analytics.events_ingested'`;
          return r!.windows === r!.n && r!.sessions === r!.n;
        },
        120_000,
        200,
      );
      if (!caughtUp) throw new Error("the consumer did not catch up within 120 s");
      // Applied from the start of ingestion to catching up: the consumer's sustained rate (it ran all along).
      const consumerRate = ingest.ingested / ((performance.now() - ingestStarted) / 1000);
      log(`consumer: ${consumerRate.toFixed(0)} events/s`);
      rawRate = await rawInsert(sql);
      figures.push(
        figure({
          name: `ingestion with the consumers running, batches of ${BATCH}, ${CLIENTS} clients (HTTP)`,
          value: ingest.rate,
          unit: "events/s",
          reference: rawReference,
          referenceValue: rawRate,
          target: {},
          note: "validation, enrichment, dedupe insert and the outbox row, with the aggregating consumers in the same process and database",
        }),
        figure({
          name: "ingestion with the consumers running: CPU of the server process (HTTP, ingestion, the consumers) per event ingested",
          value: ingest.appUs,
          unit: "µs",
          reference: "Postgres backends' CPU per event, same phase",
          referenceValue: ingest.pgUs,
          target: {},
          note: "from process.cpuUsage() and /proc/<pid>/stat of the database's backends; the load clients' process is not counted",
        }),
        figure({
          name: "aggregating consumer, sustained (all aggregates, sessions)",
          value: consumerRate,
          unit: "events/s",
          reference: "-",
          referenceValue: 0,
          target: {},
          note: "events ingested in the ingest phase / time from its start until the consumer had applied them all",
        }),
      );
    }

    if (PHASES.includes("latency")) {
      // Latency under load: background batches at RATE, a probe purchase every 100 ms.
      log(`latency: background ${RATE} events/s, probes every 100 ms, ${seconds}s`);
      const latencies: number[] = [];
      const posts: number[] = [];
      const clients = startClients({ url, mode: "open", seconds, rate: RATE, seed: 1000 });
      await clients.ready;
      const deadline = performance.now() + seconds * 1000;
      const background = clients.done.then((r) => r.sent * BATCH);
      const probes = (async () => {
        let i = 0;
        while (performance.now() < deadline) {
          const category = `probe-${i++}`;
          const t0 = performance.now();
          await post([{ userId: "probe", sessionId: "probe", eventType: "purchase", category, price: 1, quantity: 1, clientTime: new Date().toISOString() }]);
          posts.push(performance.now() - t0);
          const seen = await waitUntil(async () => (await sql`select 1 from analytics.revenue_windows where category = ${category}`).length > 0, 10_000, 2);
          if (seen) latencies.push(performance.now() - t0);
          await Bun.sleep(Math.max(0, 100 - (performance.now() - t0)));
        }
      })();
      const [sent] = await Promise.all([background, probes]);
      const achieved = sent / seconds;
      figures.push(
        ...[50, 95, 99].map((p) =>
          figure({
            name: `ingest-to-aggregate latency P${p} at ${achieved.toFixed(0)} events/s`,
            value: percentile(latencies, p),
            unit: "ms",
            reference: "-",
            referenceValue: 0,
            target: p === 99 ? { valueBelow: 500 } : {},
            note: p === 99 ? `${latencies.length} probes; background target ${RATE} events/s` : undefined,
          }),
        ),
        ...[50, 99].map((p) =>
          figure({
            name: `probe POST until its 202, P${p}, at ${achieved.toFixed(0)} events/s`,
            value: percentile(posts, p),
            unit: "ms",
            reference: "-",
            referenceValue: 0,
            target: {},
            note: p === 99 ? "the part of the latency before the probe is stored; the rest is the consumer's" : undefined,
          }),
        ),
      );
    }
    meta = await runMeta("analytics", sql);
    await server.stop();
    stop = undefined;
  }

  if (PHASES.includes("ingest-api")) {
    // The like-for-like figure: a server with ROLES=api (no consumers, no background tasks) on the
    // same database, as the raw insert runs with nothing else: the target is judged here.
    const server = await createServer(loadConfig({ ...env, ROLES: "api" }), { log: pino({ level: "silent" }) });
    stop = () => server.stop();
    const port = server.listen();
    const apiOnly = await ingestPhase({ port, database: server.database }, "ingest (API only)");
    // Its own reference, measured right after it: this machine's speed drifts within minutes, and
    // the first raw run came before the latency phase.
    const apiRawRate = await rawInsert(server.database.sql, "raw_clickstream_api");
    meta ??= await runMeta("analytics", server.database.sql);
    await server.stop();
    stop = undefined;
    figures.unshift(
      figure({
        name: `ingestion, API only (ROLES=api, no consumers), batches of ${BATCH}, ${CLIENTS} clients (HTTP)`,
        value: apiOnly.rate,
        unit: "events/s",
        reference: `${rawReference}, run right after it`,
        referenceValue: apiRawRate,
        target: { valueAtLeast: 50_000, ratioAtLeast: 0.5 },
        note: "validation, enrichment, dedupe insert and the outbox row; like the raw insert, nothing else runs (issue 10's target)",
      }),
      figure({
        name: "ingestion, API only: CPU of the server process (HTTP, ingestion) per event ingested",
        value: apiOnly.appUs,
        unit: "µs",
        reference: "Postgres backends' CPU per event, same phase",
        referenceValue: apiOnly.pgUs,
        target: {},
        note: "from process.cpuUsage() and /proc/<pid>/stat of the database's backends; the load clients' process is not counted",
      }),
    );
  }

  console.log(formatTable(figures));
  if (meta) log(`results: ${writeResults(meta, figures, { seconds, clients: CLIENTS, batch: BATCH, backgroundRate: RATE, phases: PHASES })}`);
} finally {
  await stop?.();
  await dropBenchDatabases();
}
