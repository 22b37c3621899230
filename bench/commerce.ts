/**
 * Commerce benchmark: orders through the whole saga (place over HTTP -> inventory reserves ->
 * payments charges -> the saga confirms), each figure beside a reference measured in the same
 * run on the same server, printed as a table and written to bench/results/commerce-*.json.
 *
 *   saga      orders/s from POST /api/v1/orders to CONFIRMED, closed loop (each client places
 *             its next order once the previous one is confirmed). Reference: raw postgres.js
 *             doing the same work shape per order with no framework: as many sequential
 *             transactions as the saga has hops on its critical path (place, reserve, charge,
 *             confirm), together inserting as many rows as the log gets per order, with the same
 *             number of clients. Target: at least 300 orders/s.
 *   latency   P50/P95/P99 from sending the POST to the saga's confirmation at a fixed 100
 *             orders/s (open loop: measured from each order's scheduled start), beside the raw
 *             chain at the same rate, after a warm-up at that rate (discarded). Target: P99 under 100 ms.
 *   load      P95 of loading an order aggregate whose stream holds 500 events, with its snapshot
 *             and replaying all 500 (snapshots off).
 *   temporal  P95 of GET /api/v1/orders/{id}?at=<time between two events> beside GET
 *             /api/v1/orders/{id} (the current state) on the same orders.
 *
 * The app runs in its own process (`bun src/main.ts`, workers and API); this process is the
 * load generator and watches confirmations in `orders.sagas` (updated in the transaction that
 * confirms). Run with `BENCH_ONLY=commerce bun run bench` or `bun bench/commerce.ts`. Environment:
 *   DATABASE_URL    server to use (loopback only); bench_<timestamp>_<pid> is created and dropped
 *   BENCH_SECONDS   length of a measured phase (default 6)
 *   BENCH_ONLY      comma list of phases: saga,latency,load,temporal (or commerce for all)
 *   BENCH_STRICT=1  exit 2 when a target is missed
 *   BENCH_COMMERCE_CLIENTS  clients of the saga phase (default 64)
 *   BENCH_COMMERCE_PRODUCTS products the orders are spread over, one line each (default 100; 1 makes
 *                   every order contend for one product row, the concurrency test's case)
 *   BENCH_APP_CPU_PROF=<dir>  run the app with `bun --cpu-prof --cpu-prof-md` writing its profile to <dir>
 *   BENCH_LOG_STATEMENTS=1 `log_statement = all` on the bench database (to count statements by kind in
 *                   the server's log; lines carry the database's name)
 *   BENCH_COUNT_ROUND_TRIPS=1 send the app's database traffic through a counting proxy and report its
 *                   round trips (client writes) per order in the saga phase
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import pino from "pino";
import postgres from "postgres";
import { orderAggregate } from "../modules/orders/commands.ts";
import { OrderConfirmedInStream, OrderPlaced, orderEvents } from "../modules/orders/events.ts";
import { handleCommand, loadState } from "../outbox/event-sourcing/index.ts";
import { createOutbox } from "../outbox/index.ts";
import { connectDatabase } from "../src/db/client.ts";
import { EventRegistry } from "../src/events/registry.ts";
import { type CountingProxy, countingProxy } from "../tests/support/counting-proxy.ts";
import { runServerBenchmark, type Served, serve, stopServers } from "./http/load.ts";
import {
  type BenchDatabase,
  baseUrl,
  createBenchDatabase,
  dropBenchDatabases,
  type Figure,
  figure,
  formatTable,
  INFO,
  log,
  nowMs,
  percentile,
  phaseSeconds,
  runMeta,
  selectedPhases,
  wallMs,
  writeResults,
} from "./support.ts";

const T = phaseSeconds();
const PHASES = selectedPhases("commerce", ["saga", "latency", "load", "temporal"]);
const CLIENTS = Number(process.env.BENCH_COMMERCE_CLIENTS ?? 64);
const RATE = 100;
/** Hops on the saga's critical path: place, reserve, charge, confirm (each its own commit). */
const HOPS = 4;
const ROOT = resolve(import.meta.dir, "..");
const ADDRESS = { street: "1 Main St", city: "Springfield", state: "IL", zipCode: "62701", country: "US" };
/** An order not confirmed within this is counted as lost (and the phase says so). */
const ORDER_DEADLINE_MS = 15_000;
const LOAD_EVENTS = 500;

// ---- The app, and a watcher of confirmations --------------------------------------------------

interface App {
  served: Served;
  /** The counting proxy the app's database traffic goes through (BENCH_COUNT_ROUND_TRIPS=1). */
  proxy?: CountingProxy;
  /** The customers' tokens; each order is placed by the next one in turn. */
  tokens: string[];
  /** Who placed each order (its token), for reading it back. */
  owners: Map<string, string>;
  productIds: string[];
}

/** Orders spread over this many products (each order one of them at random): a catalog, not one hot row. */
const PRODUCTS = Number(process.env.BENCH_COMMERCE_PRODUCTS ?? 100);
/**
 * Orders placed by this many customers in turn: a shop's many buyers, not one customer placing
 * hundreds of orders a second (whose one notifications inbox row every confirmation would queue on).
 */
const CUSTOMERS = Math.max(1, Number(process.env.BENCH_COMMERCE_CUSTOMERS ?? 64));

const PROFILE_DIR = process.env.BENCH_APP_CPU_PROF;

async function startApp(bench: BenchDatabase, logDir: string, databaseUrl = bench.url): Promise<App> {
  const profile = PROFILE_DIR ? ["--cpu-prof", "--cpu-prof-md", `--cpu-prof-dir=${resolve(PROFILE_DIR)}`] : [];
  const served = await serve(
    "app",
    [process.execPath, ...profile, "src/main.ts"],
    {
      DATABASE_URL: databaseUrl,
      NODE_ENV: "development",
      LOG_LEVEL: "warn",
      HOST: "127.0.0.1",
      DATABASE_POOL_MAX: "20",
      RATE_LIMIT_MAX: "100000000",
      RATE_LIMIT_IP_MAX: "100000000",
      METRICS_ENABLED: "false",
      ADMIN_PASSWORD: "bench-admin-password",
    },
    "/ready",
    { cwd: ROOT, logDir },
  );
  const post = async (path: string, body: unknown, token?: string) => {
    const res = await fetch(`${served.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
    if (res.status >= 300) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`);
    return res.json() as Promise<Record<string, string>>;
  };
  const admin = (await post("/api/v1/auth/token", { login: "admin", password: "bench-admin-password" })).accessToken!;
  const productIds: string[] = [];
  for (let i = 0; i < PRODUCTS; i++) {
    const body = { sku: `BENCH-${i}`, name: `Bench item ${i}`, category: "bench", priceCents: 999, costCents: 100, stock: 100_000_000 };
    productIds.push((await post("/api/v1/products", body, admin)).id!);
  }
  const tokens: string[] = [];
  for (let i = 0; i < CUSTOMERS; i++) {
    await post("/api/v1/users", { username: `bench_buyer_${i}`, email: `bench_buyer_${i}@example.com`, password: "password123" });
    tokens.push((await post("/api/v1/auth/token", { login: `bench_buyer_${i}`, password: "password123" })).accessToken!);
  }
  return { served, tokens, owners: new Map(), productIds };
}

/**
 * Watcher resolves each order's promise once its saga has ended (COMPLETED or CANCELLED), by
 * polling `orders.sagas` for the orders it waits on every 2 ms: the row changes in the
 * transaction that confirms the order.
 */
class Watcher {
  private readonly waiting = new Map<string, { resolve: (status: string) => void; at: number }>();
  private running = true;
  private readonly loop: Promise<void>;
  constructor(private readonly sql: postgres.Sql) {
    this.loop = this.run();
  }
  wait(orderId: string): Promise<string> {
    return new Promise((resolve) => this.waiting.set(orderId, { resolve, at: nowMs() }));
  }
  private async run() {
    while (this.running) {
      if (this.waiting.size > 0) {
        const ids = [...this.waiting.keys()];
        const done = await this.sql<{ order_id: string; status: string }[]>`
          select order_id, status from orders.sagas where order_id = any(${ids}::uuid[]) and status in ('COMPLETED', 'CANCELLED')`;
        for (const d of done) {
          this.waiting.get(d.order_id)?.resolve(d.status);
          this.waiting.delete(d.order_id);
        }
        const now = nowMs();
        for (const [id, w] of this.waiting) {
          if (now - w.at > ORDER_DEADLINE_MS) {
            w.resolve("LOST");
            this.waiting.delete(id);
          }
        }
      }
      await Bun.sleep(2);
    }
  }
  async stop() {
    this.running = false;
    await this.loop;
  }
}

let placed = 0;
const placeOrder = async (app: App): Promise<string> => {
  const token = app.tokens[placed++ % app.tokens.length]!;
  const res = await fetch(`${app.served.url}/api/v1/orders`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({
      items: [{ productId: app.productIds[Math.floor(Math.random() * app.productIds.length)]!, quantity: 1 }],
      shippingAddress: ADDRESS,
      paymentMethod: "pm_card_visa",
    }),
  });
  if (res.status !== 202) throw new Error(`place: ${res.status} ${await res.text()}`);
  const { id } = (await res.json()) as { id: string };
  app.owners.set(id, token);
  return id;
};

/** placeAndConfirm places an order and resolves with its end-to-end time in ms, from `start`. */
async function placeAndConfirm(app: App, watcher: Watcher, start: number): Promise<{ ms: number; status: string; id: string }> {
  const id = await placeOrder(app);
  const status = await watcher.wait(id);
  return { ms: nowMs() - start, status, id };
}

/** cpuMs is a process's CPU time so far (user + system), from /proc; NaN where there is none. */
function cpuMs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, in clock ticks of 10 ms
  } catch {
    return Number.NaN;
  }
}

/** sumCpuMs is the CPU time so far of several processes. */
const sumCpuMs = (pids: number[]) => pids.reduce((sum, pid) => sum + (cpuMs(pid) || 0), 0);

/** appBackends are the pids of the app's Postgres backends (its pool is warm by now): every connection to the database but this process's. */
/** benchBackends is the process ids of this benchmark's own Postgres backends (the watcher's, the raw chain's). */
async function benchBackends(sql: postgres.Sql): Promise<number[]> {
  const rows = await sql<{ pid: number }[]>`
    select pid from pg_stat_activity where datname = current_database() and application_name = 'commerce-bench'`;
  return rows.map((r) => r.pid);
}

async function appBackends(sql: postgres.Sql): Promise<number[]> {
  const rows = await sql<{ pid: number }[]>`
    select pid from pg_stat_activity where datname = current_database() and application_name <> 'commerce-bench' and pid <> pg_backend_pid()`;
  return rows.map((r) => r.pid);
}

// ---- The reference: raw postgres.js doing the same shape of work ------------------------------

/** rawChain is one order's worth of work without the framework: HOPS sequential transactions inserting `rows` rows in all. */
async function rawChain(sql: postgres.Sql, rows: number): Promise<void> {
  const orderId = crypto.randomUUID();
  const per = Math.ceil(rows / HOPS);
  for (let hop = 0; hop < HOPS; hop++) {
    const steps = Array.from({ length: per }, (_, i) => hop * per + i);
    await sql.begin((tx) => [
      tx`insert into bench_ref (order_id, step, payload)
         select ${orderId}::uuid, s, '{"type":"bench","data":{"quantity":1,"priceCents":999}}'::jsonb from unnest(${steps}::int[]) as s`,
    ]);
  }
}

/** closedLoop runs `op` from `clients` loops for `seconds`; returns completed ops and their times. */
async function closedLoop(clients: number, seconds: number, op: () => Promise<{ ok: boolean }>): Promise<{ done: number; failed: number; seconds: number }> {
  const started = nowMs();
  const deadline = started + seconds * 1000;
  let done = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (nowMs() < deadline) {
        const r = await op();
        if (r.ok) done++;
        else failed++;
      }
    }),
  );
  return { done, failed, seconds: (nowMs() - started) / 1000 };
}

/** fixedRate starts `op` every 1000/rate ms for `seconds` (open loop) and returns each one's time from its scheduled start. */
async function fixedRate(
  rate: number,
  seconds: number,
  op: (scheduled: number) => Promise<{ ms: number; ok: boolean }>,
): Promise<{ ms: number[]; failed: number }> {
  const started = nowMs();
  const n = Math.floor(rate * seconds);
  const runs: Promise<{ ms: number; ok: boolean }>[] = [];
  for (let i = 0; i < n; i++) {
    const scheduled = started + (i * 1000) / rate;
    const wait = scheduled - nowMs();
    if (wait > 0) await Bun.sleep(wait);
    runs.push(op(scheduled));
  }
  const results = await Promise.all(runs);
  return { ms: results.filter((r) => r.ok).map((r) => r.ms), failed: results.filter((r) => !r.ok).length };
}

// ---- Phases ------------------------------------------------------------------------------------

async function eventsPerOrder(sql: postgres.Sql, ids: string[]): Promise<number> {
  const [row] = await sql<{ n: number }[]>`select count(*)::int as n from outbox.events where subject = any(${ids}::text[])`;
  return row!.n / ids.length;
}

/**
 * hops says where an order's time goes: for each step of the flow, P50/P95 of the time from the
 * previous step's event to its own (events carry the time they were made, in their transaction).
 */
async function hops(sql: postgres.Sql, ids: string[]): Promise<string> {
  const steps = ["order.created", "inventory.reserved", "payment.processed", "order.confirmed"];
  const rows = await sql<{ subject: string; type: string; time: Date }[]>`
    select subject, type, time from outbox.events where subject = any(${ids}::text[]) and type = any(${steps}::text[])`;
  const at = new Map<string, Map<string, number>>();
  for (const r of rows) {
    const m = at.get(r.subject) ?? new Map<string, number>();
    m.set(r.type, new Date(r.time).getTime());
    at.set(r.subject, m);
  }
  return steps
    .slice(1)
    .map((step, i) => {
      const gaps = [...at.values()].filter((m) => m.has(step) && m.has(steps[i]!)).map((m) => m.get(step)! - m.get(steps[i]!)!);
      return `${steps[i]} -> ${step} ${percentile(gaps, 50).toFixed(0)}/${percentile(gaps, 95).toFixed(0)}`;
    })
    .join("; ");
}

async function sagaPhase(app: App, watcher: Watcher, sql: postgres.Sql): Promise<{ figures: Figure[]; rows: number; ids: string[] }> {
  log(`saga: ${CLIENTS} clients, closed loop, ${T}s (after ${Math.max(2, T / 2)}s warm-up)`);
  const ids: string[] = [];
  const op = async () => {
    const r = await placeAndConfirm(app, watcher, nowMs());
    ids.push(r.id);
    return { ok: r.status === "COMPLETED" };
  };
  await closedLoop(CLIENTS, Math.max(2, T / 2), op);
  ids.length = 0;
  const backends = await appBackends(sql);
  const own = await benchBackends(sql);
  const cpu0 = cpuMs(app.served.proc.pid);
  const pg0 = sumCpuMs(backends);
  const own0 = sumCpuMs(own);
  const trips0 = app.proxy?.flushes ?? 0;
  const saga = await closedLoop(CLIENTS, T, op);
  const appCpuPerOrder = (cpuMs(app.served.proc.pid) - cpu0) / Math.max(1, saga.done);
  const pgCpuPerOrder = (sumCpuMs(backends) - pg0) / Math.max(1, saga.done);
  const watcherCpuPerOrder = (sumCpuMs(own) - own0) / Math.max(1, saga.done);
  const trips = app.proxy ? ((app.proxy.flushes - trips0) / Math.max(1, saga.done)).toFixed(1) : "not counted";
  const rate = saga.done / saga.seconds;
  const rows = Math.round(await eventsPerOrder(sql, ids.slice(0, 500)));
  log(
    `   saga: ${saga.done} confirmed (${saga.failed} not) in ${saga.seconds.toFixed(1)}s: ${rate.toFixed(0)}/s; ${rows} events per order; app CPU ${appCpuPerOrder.toFixed(1)} ms/order, its Postgres backends ${pgCpuPerOrder.toFixed(1)} ms/order (the bench's watcher ${watcherCpuPerOrder.toFixed(1)}); round trips/order ${trips}`,
  );
  const raw = await closedLoop(CLIENTS, Math.max(2, T / 2), async () => {
    await rawChain(sql, rows);
    return { ok: true };
  });
  const rawRate = raw.done / raw.seconds;
  log(`   raw chain: ${rawRate.toFixed(0)}/s`);
  return {
    figures: [
      figure({
        name: "orders/s through the saga to CONFIRMED (HTTP place, reserve, charge, confirm)",
        value: rate,
        unit: "orders/s",
        reference: `raw postgres.js: ${HOPS} sequential transactions inserting ${rows} rows per order, same ${CLIENTS} clients`,
        referenceValue: rawRate,
        target: { valueAtLeast: 300 },
        note: `${saga.done} orders in ${saga.seconds.toFixed(1)} s, ${saga.failed} not confirmed within ${ORDER_DEADLINE_MS / 1000} s; ${rows} events appended per order; the app process spent ${appCpuPerOrder.toFixed(1)} ms of CPU per order and its Postgres backends ${pgCpuPerOrder.toFixed(1)} ms`,
      }),
    ],
    rows,
    ids,
  };
}

async function latencyPhase(app: App, watcher: Watcher, sql: postgres.Sql, rows: number): Promise<Figure[]> {
  // Warm up first at the same rate (discarded), so that the figure does not depend on whether
  // the saga phase ran before: a cold app (JIT, prepared statements, the pool's connections,
  // the first leases) answers its first hundreds of orders several times slower.
  const warmUp = Math.max(2, T / 2);
  log(`latency: ${RATE} orders/s for ${T}s, open loop (after ${warmUp}s warm-up at the same rate)`);
  await fixedRate(RATE, warmUp, async (scheduled) => {
    const r = await placeAndConfirm(app, watcher, scheduled);
    return { ms: r.ms, ok: r.status === "COMPLETED" };
  });
  const ids: string[] = [];
  // CPU per order at this rate: steadier than the latency itself on a machine whose speed swings,
  // so it is what tells one change from another.
  const backends = await appBackends(sql);
  const own = await benchBackends(sql);
  const cpu0 = [cpuMs(app.served.proc.pid), sumCpuMs(backends), sumCpuMs(own)];
  const saga = await fixedRate(RATE, T, async (scheduled) => {
    const r = await placeAndConfirm(app, watcher, scheduled);
    ids.push(r.id);
    return { ms: r.ms, ok: r.status === "COMPLETED" };
  });
  const perOrder = [cpuMs(app.served.proc.pid), sumCpuMs(backends), sumCpuMs(own)].map((v, i) => ((v - cpu0[i]!) / Math.max(1, saga.ms.length)).toFixed(1));
  const cpu = `app CPU ${perOrder[0]} ms/order, its Postgres backends ${perOrder[1]} (the bench's watcher ${perOrder[2]})`;
  log(`   ${cpu}`);
  log(`   hops (P50/P95 ms from the previous step's event): ${await hops(sql, ids)}`);
  const ref = await fixedRate(RATE, Math.max(2, T / 2), async (scheduled) => {
    await rawChain(sql, rows);
    return { ms: nowMs() - scheduled, ok: true };
  });
  const p = (xs: number[], q: number) => percentile(xs, q);
  log(`   saga P50/P95/P99 ${p(saga.ms, 50).toFixed(1)}/${p(saga.ms, 95).toFixed(1)}/${p(saga.ms, 99).toFixed(1)} ms; raw ${p(ref.ms, 99).toFixed(1)} ms P99`);
  const reference = `raw postgres.js chain (${HOPS} transactions, ${rows} rows) at the same rate`;
  const note = `${saga.ms.length} orders, ${saga.failed} not confirmed; ${cpu}; raw P50/P95/P99 ${p(ref.ms, 50).toFixed(1)}/${p(ref.ms, 95).toFixed(1)}/${p(ref.ms, 99).toFixed(1)} ms`;
  return [
    figure({
      name: `end-to-end latency at ${RATE} orders/s, P50`,
      value: p(saga.ms, 50),
      unit: "ms",
      reference: `${reference}, P50`,
      referenceValue: p(ref.ms, 50),
      target: {},
    }),
    figure({
      name: `end-to-end latency at ${RATE} orders/s, P95`,
      value: p(saga.ms, 95),
      unit: "ms",
      reference: `${reference}, P95`,
      referenceValue: p(ref.ms, 95),
      target: {},
    }),
    figure({
      name: `end-to-end latency at ${RATE} orders/s, P99`,
      value: p(saga.ms, 99),
      unit: "ms",
      reference: `${reference}, P99`,
      referenceValue: p(ref.ms, 99),
      target: { valueBelow: 100 },
      note,
    }),
  ];
}

/** loadPhase builds order streams of 500 events (placed, then confirmations) and times loading them. */
async function loadPhase(bench: BenchDatabase): Promise<Figure[]> {
  const database = connectDatabase(bench.url, { max: 2 });
  const registry = new EventRegistry();
  registry.register(...orderEvents);
  const outbox = createOutbox({ database, registry, log: pino({ level: "silent" }) });
  const deps = { db: database.db, outbox: outbox.appender, inventory: { getProducts: async () => [] } };
  const withSnapshots = orderAggregate({ ...deps, snapshotEvery: 50 });
  const replaying = orderAggregate({ ...deps, snapshotEvery: 0 });
  const ids = Array.from({ length: 10 }, () => Bun.randomUUIDv7());
  try {
    log(`load: ${ids.length} order streams of ${LOAD_EVENTS} events`);
    for (const id of ids) {
      const streamId = withSnapshots.streamId(id);
      const placedAt = new Date().toISOString();
      const placed = OrderPlaced.with(
        {
          orderId: id,
          customerId: Bun.randomUUIDv7(),
          items: [{ productId: Bun.randomUUIDv7(), name: "Item", quantity: 1, unitPriceCents: 100, lineTotalCents: 100 }],
          totalCents: 100,
          currency: "USD",
          shippingAddress: ADDRESS,
          paymentMethod: "pm_card_visa",
          placedAt,
        },
        { subject: id },
      );
      // A synthetic stream (the lifecycle is short): placed, then confirmations, which evolve folds all the same.
      const confirmations = Array.from({ length: LOAD_EVENTS - 26 }, () =>
        OrderConfirmedInStream.with({ orderId: id, confirmedAt: placedAt }, { subject: id }),
      );
      await database.db.transaction((tx) => outbox.appender.appendToStream(tx, streamId, 0, [placed, ...confirmations]));
      // A command through the runtime takes the snapshot (at version 476), then a 24-event tail.
      await handleCommand(withSnapshots, id, { type: "cancel", reason: "bench", now: placedAt });
      const tail = Array.from({ length: 24 }, () => OrderConfirmedInStream.with({ orderId: id, confirmedAt: placedAt }, { subject: id }));
      await database.db.transaction((tx) => outbox.appender.appendToStream(tx, streamId, LOAD_EVENTS - 24, tail));
    }
    const a = await loadState(withSnapshots, ids[0]!);
    const b = await loadState(replaying, ids[0]!);
    if (a.version !== LOAD_EVENTS || !Bun.deepEquals(a, b)) throw new Error("snapshot plus tail differs from the replay");
    const sample = async (es: typeof withSnapshots, seconds: number) => {
      const out: number[] = [];
      const deadline = nowMs() + seconds * 1000;
      for (let i = 0; nowMs() < deadline && out.length < 5000; i++) {
        const t0 = nowMs();
        await loadState(es, ids[i % ids.length]!);
        out.push(nowMs() - t0);
      }
      return out;
    };
    await sample(withSnapshots, 0.3);
    await sample(replaying, 0.3);
    const s = Math.max(1, T / 4);
    const snap = await sample(withSnapshots, s / 2);
    const replay = await sample(replaying, s);
    snap.push(...(await sample(withSnapshots, s / 2)));
    const p = (xs: number[], q: number) => percentile(xs, q);
    log(`   P95 with snapshot ${p(snap, 95).toFixed(2)} ms, replaying ${p(replay, 95).toFixed(2)} ms`);
    return [
      figure({
        name: `load an order aggregate of ${LOAD_EVENTS} events with its snapshot (24-event tail), P95`,
        value: p(snap, 95),
        unit: "ms",
        reference: `the same stream replayed from its first event (snapshots off), P95`,
        referenceValue: p(replay, 95),
        target: {},
        note: `P50 ${p(snap, 50).toFixed(2)} ms with the snapshot, ${p(replay, 50).toFixed(2)} ms replaying; ${snap.length} and ${replay.length} samples, one reader`,
      }),
    ];
  } finally {
    await database.close(2);
  }
}

async function temporalPhase(app: App, sql: postgres.Sql, ids: string[]): Promise<Figure[]> {
  const sampleIds = ids.slice(0, 200);
  if (sampleIds.length === 0) {
    for (let i = 0; i < 50; i++) sampleIds.push(await placeOrder(app));
    await Bun.sleep(1000);
  }
  // For each order, a time strictly between its placement and its confirmation (or the placement itself).
  // As epoch milliseconds: a timestamptz comes back as a Date, and Date.parse of one (through its
  // string form) drops the milliseconds, which put most midpoints before the placement (a 404).
  const rows = await sql<{ subject: string; placed: string; confirmed: string | null }[]>`
    select subject, (extract(epoch from min(time) filter (where stream_version = 1)) * 1000)::bigint::text as placed,
           (extract(epoch from min(time) filter (where stream_version = 2)) * 1000)::bigint::text as confirmed
    from outbox.events where stream_id = any(${sampleIds.map((id) => `order-${id}`)}::text[]) group by subject`;
  const targets = rows.map((r) => {
    // Rounded up to the next millisecond: `?at=` is read at millisecond precision.
    const a = Number(r.placed) + 1;
    const b = r.confirmed ? Number(r.confirmed) : a;
    return { id: r.subject, at: new Date(a + Math.max(0, Math.floor((b - a) / 2))).toISOString() };
  });
  log(`temporal: GET ?at= on ${targets.length} orders, ${Math.max(1, T / 2)}s per side`);
  // Read by the customer who placed the order (customers see only their own); a refusal would time an error.
  const get = async (id: string, path: string) => {
    const res = await fetch(`${app.served.url}${path}`, { headers: { authorization: `Bearer ${app.owners.get(id)}` } });
    if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
    await res.arrayBuffer();
  };
  const sample = async (seconds: number, path: (t: (typeof targets)[number]) => string) => {
    const out: number[] = [];
    const deadline = nowMs() + seconds * 1000;
    for (let i = 0; nowMs() < deadline && out.length < 5000; i++) {
      const t0 = nowMs();
      const t = targets[i % targets.length]!;
      await get(t.id, path(t));
      out.push(nowMs() - t0);
    }
    return out;
  };
  const atPath = (t: (typeof targets)[number]) => `/api/v1/orders/${t.id}?at=${encodeURIComponent(t.at)}`;
  const nowPath = (t: (typeof targets)[number]) => `/api/v1/orders/${t.id}`;
  await sample(0.5, atPath);
  await sample(0.5, nowPath);
  const s = Math.max(1, T / 4);
  const temporal = await sample(s / 2, atPath);
  const current = await sample(s, nowPath);
  temporal.push(...(await sample(s / 2, atPath)));
  const p = (xs: number[], q: number) => percentile(xs, q);
  return [
    figure({
      name: "temporal query GET /orders/{id}?at=<between two events> over HTTP, P95",
      value: p(temporal, 95),
      unit: "ms",
      reference: "GET /orders/{id} (current state) on the same orders, P95",
      referenceValue: p(current, 95),
      target: {},
      note: `P50 ${p(temporal, 50).toFixed(2)} ms vs ${p(current, 50).toFixed(2)} ms; one client, ${temporal.length} and ${current.length} samples`,
    }),
  ];
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  if (PHASES.length === 0) {
    log("commerce benchmark: no phase selected by BENCH_ONLY; skipped");
    return 0;
  }
  const started = nowMs();
  const admin = postgres(baseUrl(), { max: 1, onnotice: () => {} });
  const logDir = mkdtempSync(join(tmpdir(), "bench-commerce-"));
  try {
    const meta = await runMeta("commerce", admin);
    log(`commerce benchmark on ${meta.pgVersion?.split(",")[0]}, ${meta.cpuCount} CPUs, ${T}s per phase`);
    const bench = await createBenchDatabase();
    const sql = postgres(bench.url, { max: 24, onnotice: () => {}, connection: { application_name: "commerce-bench" } });
    await sql`create unlogged table if not exists bench_ref (order_id uuid not null, step int not null, payload jsonb not null, primary key (order_id, step))`;
    const figures: Figure[] = [];
    let ids: string[] = [];
    let rows = 7;
    const needsApp = PHASES.some((p) => p !== "load");
    if (process.env.BENCH_LOG_STATEMENTS === "1") await sql.unsafe(`alter database "${bench.name}" set log_statement = 'all'`);
    const proxy = needsApp && process.env.BENCH_COUNT_ROUND_TRIPS === "1" ? await countingProxy(bench.url) : undefined;
    const app = needsApp ? await startApp(bench, logDir, proxy?.url) : undefined;
    if (app) app.proxy = proxy;
    const watcher = needsApp ? new Watcher(sql) : undefined;
    try {
      if (app && watcher && PHASES.includes("saga")) {
        const r = await sagaPhase(app, watcher, sql);
        figures.push(...r.figures);
        ids = r.ids;
        rows = r.rows;
      }
      if (app && watcher && PHASES.includes("latency")) figures.push(...(await latencyPhase(app, watcher, sql, rows)));
      if (app && PHASES.includes("temporal")) figures.push(...(await temporalPhase(app, sql, ids)));
    } finally {
      await watcher?.stop();
      await stopServers();
      proxy?.close();
    }
    if (PHASES.includes("load")) figures.push(...(await loadPhase(bench)));
    await sql.end({ timeout: 2 });
    console.log(
      `\ncommerce benchmark: ${meta.date}, commit ${meta.gitCommit?.slice(0, 12) ?? "?"}${meta.gitDirty ? " (dirty)" : ""}, ${meta.cpuCount} CPUs, ${meta.pgVersion?.split(" on ")[0]}, BENCH_SECONDS=${T}\n`,
    );
    console.log(formatTable(figures));
    const path = writeResults(meta, figures, {
      totalSeconds: Math.round((nowMs() - started) / 100) / 10,
      clients: CLIENTS,
      wallClock: new Date(wallMs()).toISOString(),
    });
    const targeted = figures.filter((f) => f.target !== INFO);
    const missed = targeted.filter((f) => !f.pass).length;
    console.log(`\n${targeted.length - missed}/${targeted.length} targets met; results in ${path} and bench/results/commerce-latest.json`);
    return missed && process.env.BENCH_STRICT === "1" ? 2 : 0;
  } finally {
    await admin.end({ timeout: 2 });
    await dropBenchDatabases();
    rmSync(logDir, { recursive: true, force: true });
  }
}

runServerBenchmark(main);
