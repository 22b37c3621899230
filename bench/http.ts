/**
 * HTTP benchmark: the app's hot paths beside a reference served from the same machine in the
 * same run, each server in its own process, loaded over 127.0.0.1 by `wrk` (throughput) and by a
 * fixed-rate client (latency), then printed as a table and written to bench/results/http-*.json.
 *
 *   1. `GET /health`: the app (`bun src/main.ts`, production settings, Redis) vs bare Hono
 *   2. `GET /api/v1/users/me` signed in: the app vs Bun.serve + postgres.js reading the same row
 *   3. P50/P99 latency of both pairs at a fixed request rate
 *
 * Run with `bun run bench` (all benchmarks), `BENCH_ONLY=http bun run bench`, or
 * `bun bench/http.ts`. Environment:
 *   DATABASE_URL            server to use (default postgres://postgres@127.0.0.1:5432/postgres;
 *                           loopback only); the run creates bench_<timestamp>_<pid>_http and drops it
 *   REDIS_URL               Redis for the app's rate limit (default redis://127.0.0.1:6379; loopback
 *                           only); if unreachable the app counts in memory and the figures say so
 *   BENCH_SECONDS           length of a measured phase (default 6)
 *   BENCH_ONLY              comma list of phases: health,me (bench/run.ts also takes `http`)
 *   BENCH_STRICT=1          exit 2 when a target is missed
 *   BENCH_HTTP_CONNECTIONS  wrk connections (default 32, one wrk thread)
 *   BENCH_HTTP_RATE         requests/s of the latency phases (default 1000)
 *   BENCH_HTTP_WARMUP       seconds of load on each server before it is measured (default 2 x BENCH_SECONDS)
 *
 * `wrk` comes from Debian: when it is missing and this runs as root, `apt-get install -y wrk`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Redis } from "ioredis";
import postgres from "postgres";
import { abba, ensureWrk, fixedRate, runServerBenchmark, serve, stopServers, type WrkResult, wrk } from "./http/load.ts";
import {
  baseUrl,
  createBenchDatabase,
  dropBenchDatabases,
  type Figure,
  figure,
  formatTable,
  INFO,
  log,
  nowMs,
  phaseSeconds,
  runMeta,
  writeResults,
} from "./support.ts";

const T = phaseSeconds();
const CONNECTIONS = Number(process.env.BENCH_HTTP_CONNECTIONS ?? 32);
const RATE = Number(process.env.BENCH_HTTP_RATE ?? 1000);
const LATENCY_SECONDS = Math.max(2, Math.round(T / 2));
/**
 * Warm-up per server before each pair is measured. The app has far more code for the JIT to
 * compile than the references: after 2 s under load its JIT threads still take a quarter of its
 * CPU, after 15 s a twentieth. BENCH_HTTP_WARMUP overrides it.
 */
const WARMUP_SECONDS = Number(process.env.BENCH_HTTP_WARMUP ?? Math.max(3, 2 * T));
const PHASES = ["health", "me"];
const ONLY = process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(",").map((p) => p.trim()) : undefined;
const ROOT = resolve(import.meta.dir, "..");
const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);

const tmp = mkdtempSync(join(tmpdir(), "bench-http-"));

/** redisUrl is REDIS_URL (or the local default) when it answers PING, else undefined. */
async function reachableRedis(): Promise<string | undefined> {
  const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
  if (!LOOPBACK.has(new URL(url).hostname)) throw new Error(`benchmarks only use a local Redis (127.0.0.1); REDIS_URL points at ${new URL(url).hostname}`);
  const probe = new Redis(url, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  probe.on("error", () => {});
  try {
    await probe.connect();
    return (await probe.ping()) === "PONG" ? url : undefined;
  } catch {
    return undefined;
  } finally {
    probe.disconnect();
  }
}

const round1 = (v: number) => Math.round(v * 10) / 10;

function randomSecret(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
}

async function main(): Promise<number> {
  const started = nowMs();
  const base = baseUrl();
  const bin = ensureWrk();
  const admin = postgres(base, { max: 1, onnotice: () => {} });
  const figures: Figure[] = [];
  const cpu: { path: string; appMicros: number; referenceMicros: number }[] = [];
  try {
    const meta = await runMeta("http", admin);
    const redisUrl = await reachableRedis();
    const limiter = redisUrl ? "Redis rate limit" : "in-memory rate limit (Redis unreachable)";
    log(`http benchmark on ${meta.pgVersion?.split(",")[0]}, ${meta.cpuCount} CPUs, ${T}s per phase, wrk -t1 -c${CONNECTIONS}, ${limiter}`);
    const db = await createBenchDatabase({ suffix: "http" });

    // The app as in production: its own process, production settings, request logs at info (to a file).
    const appEnv: Record<string, string> = {
      NODE_ENV: "production",
      HOST: "127.0.0.1",
      DATABASE_URL: db.url,
      JWT_SECRET: randomSecret(),
      ADMIN_PASSWORD: randomSecret(),
      METRICS_TOKEN: randomSecret(),
      LOG_LEVEL: "info",
      // Counted (in Redis) on every request like any other limit, but never reached by the load.
      RATE_LIMIT_MAX: "1000000000",
      // The whole load comes from one address, which now has its own budget too.
      RATE_LIMIT_IP_MAX: "1000000000",
      ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
    };
    const where = { cwd: ROOT, logDir: tmp };
    const app = await serve("app", [process.execPath, "src/main.ts"], appEnv, "/health", where);
    const user = { username: `bench_${process.pid}`, email: `bench_${process.pid}@example.com`, password: "bench-password-1" };
    const reg = await fetch(`${app.url}/api/v1/users`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(user) });
    if (reg.status !== 201) throw new Error(`register failed: ${reg.status} ${await reg.text()}`);
    const account = (await reg.json()) as Record<string, unknown>;
    const tokenRes = await fetch(`${app.url}/api/v1/auth/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ login: user.username, password: user.password }),
    });
    const { accessToken } = (await tokenRes.json()) as { accessToken: string };
    const auth = { authorization: `Bearer ${accessToken}` };

    const hono = await serve("bare-hono", [process.execPath, "bench/http/bare-hono.ts"], {}, "/health", where);
    const pg = await serve(
      "bare-pg",
      [process.execPath, "bench/http/bare-pg.ts"],
      { DATABASE_URL: db.url, ACCOUNT_ID: String(account.id) },
      "/api/v1/users/me",
      where,
    );

    // Both sides answer the same thing before they are compared.
    const [mine, theirs] = await Promise.all([
      fetch(`${app.url}/api/v1/users/me`, { headers: auth }).then((r) => r.json()),
      fetch(`${pg.url}/api/v1/users/me`).then((r) => r.json()),
    ]);
    if (JSON.stringify(mine) !== JSON.stringify(theirs))
      throw new Error(`the reference answers differently:\n app ${JSON.stringify(mine)}\n ref ${JSON.stringify(theirs)}`);

    const pairs = [
      { phase: "health", path: "/health", app, ref: hono, refName: "bare Hono on Bun.serve", headers: {}, target: 0.7 },
      { phase: "me", path: "/api/v1/users/me", app, ref: pg, refName: "Bun.serve + postgres.js, same row by primary key", headers: auth, target: 0.5 },
    ];
    for (const p of pairs) {
      if (ONLY && !ONLY.includes(p.phase)) continue;
      const label = `GET ${p.path}${p.headers === auth ? " (signed in)" : ""}`;
      log(`${label}: warm-up`);
      const run = { bin, path: p.path, connections: CONNECTIONS, headers: p.headers };
      await wrk(p.ref, { ...run, seconds: WARMUP_SECONDS });
      await wrk(p.app, { ...run, seconds: WARMUP_SECONDS });
      log(`${label}: throughput, ${T}s per side`);
      const t = await abba(p.ref, p.app, { ...run, seconds: T });
      const cpuUs = (r: WrkResult) => (r.cpu / r.ops) * 1e6;
      cpu.push({ path: p.path, appMicros: round1(cpuUs(t.app)), referenceMicros: round1(cpuUs(t.ref)) });
      log(`${label}: server CPU per request ${cpuUs(t.app).toFixed(1)} us (app) vs ${cpuUs(t.ref).toFixed(1)} us (reference)`);
      const bad = t.app.bad + t.ref.bad;
      figures.push(
        figure({
          name: `${label}, wrk -t1 -c${CONNECTIONS}`,
          value: t.app.rate,
          unit: "req/s",
          reference: p.refName,
          referenceValue: t.ref.rate,
          target: { ratioAtLeast: p.target },
          note: bad ? `${t.app.bad} app and ${t.ref.bad} reference answers were errors or timeouts` : p.phase === "me" ? limiter : undefined,
        }),
      );
      if (bad) figures[figures.length - 1]!.pass = false;
      // Latency is measured well below saturation: at BENCH_HTTP_RATE, or at half the slower side's
      // throughput when a busy machine cannot sustain that (the note then says so).
      const rate = Math.max(1, Math.min(RATE, Math.floor(Math.min(t.app.rate, t.ref.rate) / 2)));
      log(`${label}: latency at ${rate} req/s, ${LATENCY_SECONDS}s per side`);
      const lr = await fixedRate(`${p.ref.url}${p.path}`, p.headers, rate, LATENCY_SECONDS);
      const la = await fixedRate(`${p.app.url}${p.path}`, p.headers, rate, LATENCY_SECONDS);
      const notes = [
        ...(rate < RATE ? [`rate lowered from ${RATE} to ${rate} req/s: half the slower side's throughput`] : []),
        ...(la.failed || lr.failed ? [`${la.failed} app and ${lr.failed} reference requests failed`] : []),
      ];
      for (const q of ["p50", "p99"] as const) {
        figures.push(
          figure({
            name: `${label} ${q.toUpperCase()} at ${rate} req/s`,
            value: la[q],
            unit: "ms",
            reference: p.refName,
            referenceValue: lr[q],
            target: {},
            note: notes.join("; ") || undefined,
          }),
        );
      }
    }

    console.log(
      `\nhttp benchmark: ${meta.date}, commit ${meta.gitCommit?.slice(0, 12) ?? "?"}${meta.gitDirty ? " (dirty)" : ""}, ${meta.cpuCount} CPUs, ${meta.pgVersion?.split(" on ")[0]}, BENCH_SECONDS=${T}\n`,
    );
    console.log(formatTable(figures));
    console.log(`\nserver CPU per request (user + system, the server process only; steadier than req/s on a busy machine):`);
    for (const x of cpu) console.log(`  GET ${x.path}: app ${x.appMicros} us, reference ${x.referenceMicros} us`);
    const path = writeResults(meta, figures, {
      totalSeconds: Math.round((nowMs() - started) / 100) / 10,
      load: { generator: "wrk 4.x", threads: 1, connections: CONNECTIONS, latencyRate: RATE, latencySeconds: LATENCY_SECONDS },
      rateLimiter: redisUrl ? "redis" : "memory",
      serverCpuPerRequest: cpu,
    });
    const targeted = figures.filter((f) => f.target !== INFO);
    const missed = targeted.filter((f) => !f.pass).length;
    console.log(
      `\n${targeted.length - missed}/${targeted.length} targets met; results in ${path} and bench/results/http-latest.json (${((nowMs() - started) / 1000).toFixed(0)}s)`,
    );
    return missed && process.env.BENCH_STRICT === "1" ? 2 : 0;
  } finally {
    await stopServers();
    await admin.end({ timeout: 2 });
    await dropBenchDatabases();
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (ONLY && !ONLY.some((p) => PHASES.includes(p))) {
  log(`BENCH_ONLY=${process.env.BENCH_ONLY} names none of this benchmark's phases (${PHASES.join(", ")}); skipped`);
  process.exit(0);
}

runServerBenchmark(main, tmp);
