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
 *
 * `wrk` comes from Debian: when it is missing and this runs as root, `apt-get install -y wrk`.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { Redis } from "ioredis";
import postgres from "postgres";
import { baseUrl, combine, createBenchDatabase, dropBenchDatabases, type Figure, figure, formatTable, INFO, log, nowMs, percentile, phaseSeconds, runMeta, writeResults } from "./support.ts";

const T = phaseSeconds();
const CONNECTIONS = Number(process.env.BENCH_HTTP_CONNECTIONS ?? 32);
const RATE = Number(process.env.BENCH_HTTP_RATE ?? 1000);
const LATENCY_SECONDS = Math.max(2, Math.round(T / 2));
const WARMUP_SECONDS = Math.max(1, Math.round(T / 6));
const PHASES = ["health", "me"];
const ONLY = process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(",").map((p) => p.trim()) : undefined;
const ROOT = resolve(import.meta.dir, "..");
const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);
/** No server start waits longer than this. */
const START_TIMEOUT_MS = 60_000;

const tmp = mkdtempSync(join(tmpdir(), "bench-http-"));

/** ensureWrk finds wrk, or installs Debian's package when running as root. */
function ensureWrk(): string {
  const found = Bun.which("wrk");
  if (found) return found;
  if (process.getuid?.() === 0 && Bun.which("apt-get")) {
    log("wrk is missing: apt-get install -y wrk");
    const r = Bun.spawnSync(["apt-get", "install", "-y", "wrk"], { stdout: "ignore", stderr: "pipe", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
    const installed = Bun.which("wrk");
    if (installed) return installed;
    throw new Error(`apt-get install -y wrk failed: ${r.stderr.toString().trim().split("\n").slice(-3).join(" ")}`);
  }
  throw new Error("wrk is not installed; install it (Debian/Ubuntu: apt-get install -y wrk) and run again");
}

/** freePort asks the kernel for a free port on 127.0.0.1. */
async function freePort(): Promise<number> {
  const probe = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
  const port = probe.port!;
  await probe.stop(true);
  return port;
}

/** Served is one server process under test. */
interface Served {
  name: string;
  url: string;
  proc: Subprocess;
  /** The last lines the process wrote (stdout and stderr), for error messages. */
  tail(): string;
  stop(): Promise<void>;
}

const servers = new Set<Served>();

/** serve starts `script` with `env` on a free port and waits until `probe` answers 200. */
async function serve(name: string, cmd: string[], env: Record<string, string>, probe: string): Promise<Served> {
  const port = await freePort();
  const out = join(tmp, `${name}.out`);
  const err = join(tmp, `${name}.err`);
  const proc = Bun.spawn(cmd, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp", ...env, PORT: String(port) },
    stdout: Bun.file(out),
    stderr: Bun.file(err),
  });
  const read = (f: string) => {
    try {
      return readFileSync(f, "utf8");
    } catch {
      return "";
    }
  };
  const s: Served = {
    name,
    url: `http://127.0.0.1:${port}`,
    proc,
    tail: () => `${read(out)}${read(err)}`.trim().split("\n").slice(-15).join("\n"),
    async stop() {
      servers.delete(s);
      proc.kill("SIGTERM");
      const exited = await Promise.race([proc.exited, Bun.sleep(15_000).then(() => "timeout" as const)]);
      if (exited === "timeout") proc.kill("SIGKILL");
    },
  };
  servers.add(s);
  const deadline = nowMs() + START_TIMEOUT_MS;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`${name} exited with ${proc.exitCode} before it served ${probe}:\n${s.tail()}`);
    const ok = await fetch(`${s.url}${probe}`, { signal: AbortSignal.timeout(2000) }).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return s;
    if (nowMs() > deadline) throw new Error(`${name} did not serve ${probe} within ${START_TIMEOUT_MS / 1000}s:\n${s.tail()}`);
    await Bun.sleep(100);
  }
}

/** WrkResult is one wrk run: requests per second, how many answers were not 2xx/3xx, and the server's CPU time. */
interface WrkResult {
  ops: number;
  seconds: number;
  rate: number;
  bad: number;
  /** CPU seconds the server process used during the run (user + system, all its threads). */
  cpu: number;
}

const CLOCK_TICKS = 100;

/** cpuSeconds reads a process's user + system time from /proc (Linux); NaN elsewhere. */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return Number.NaN;
  }
}

/** wrk loads `server`'s `path` with one thread and CONNECTIONS connections for `seconds`. */
async function wrk(bin: string, server: Served, path: string, seconds: number, headers: Record<string, string> = {}): Promise<WrkResult> {
  const url = `${server.url}${path}`;
  const cpuBefore = cpuSeconds(server.proc.pid);
  const args = [bin, "-t1", `-c${CONNECTIONS}`, `-d${seconds}s`, "--timeout", "5s"];
  for (const [k, v] of Object.entries(headers)) args.push("-H", `${k}: ${v}`);
  const proc = Bun.spawn([...args, url], { stdout: "pipe", stderr: "pipe" });
  const killer = setTimeout(() => proc.kill("SIGKILL"), (seconds + 30) * 1000);
  const [text, errText, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(killer);
  const total = /(\d+) requests in ([\d.]+)(m?s)/.exec(text);
  if (code !== 0 || !total) throw new Error(`wrk failed (exit ${code}): ${text}${errText}`);
  const ops = Number(total[1]);
  const secs = Number(total[2]) / (total[3] === "ms" ? 1000 : 1);
  const bad = Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0) + Number(/timeout (\d+)/.exec(text)?.[1] ?? 0);
  return { ops, seconds: secs, rate: ops / secs, bad, cpu: cpuSeconds(server.proc.pid) - cpuBefore };
}

/**
 * abba runs wrk on the reference, the app, the app again, then the reference again (half a phase
 * each), so drift on a shared machine falls on both sides alike.
 */
async function abba(bin: string, ref: Served, app: Served, path: string, headers: Record<string, string>): Promise<{ ref: WrkResult; app: WrkResult }> {
  const half = Math.max(1, Math.round(T / 2));
  const r1 = await wrk(bin, ref, path, half, headers);
  const a1 = await wrk(bin, app, path, half, headers);
  const a2 = await wrk(bin, app, path, half, headers);
  const r2 = await wrk(bin, ref, path, half, headers);
  const merge = (x: WrkResult, y: WrkResult) => ({ ...combine(x, y), bad: x.bad + y.bad, cpu: x.cpu + y.cpu });
  return { ref: merge(r1, r2), app: merge(a1, a2) };
}

/** LatencyResult holds per-request latencies (ms) measured from each request's scheduled start. */
interface LatencyResult {
  p50: number;
  p99: number;
  sent: number;
  failed: number;
}

/**
 * fixedRate sends `rate` requests per second for `seconds` from this process (never from a
 * server's), open loop: each latency counts from when the request was due, not from when it
 * went out, so a stall shows in the tail instead of being hidden (no coordinated omission).
 */
async function fixedRate(url: string, headers: Record<string, string>, rate: number, seconds: number): Promise<LatencyResult> {
  const total = Math.round(rate * seconds);
  const interval = 1000 / rate;
  const latencies: number[] = [];
  let failed = 0;
  const inflight = new Set<Promise<void>>();
  const t0 = nowMs() + 20;
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor((nowMs() - t0) / interval) + 1);
    while (sent < due) {
      const scheduled = t0 + sent * interval;
      sent++;
      const p: Promise<void> = fetch(url, { headers, signal: AbortSignal.timeout(5000) })
        .then(async (r) => {
          await r.arrayBuffer();
          if (r.status !== 200) throw new Error(`status ${r.status}`);
          latencies.push(nowMs() - scheduled);
        })
        .catch(() => {
          failed++;
        })
        .finally(() => inflight.delete(p));
      inflight.add(p);
    }
    await Bun.sleep(Math.max(0, t0 + sent * interval - nowMs()));
  }
  await Promise.race([Promise.all(inflight), Bun.sleep(10_000)]);
  failed += inflight.size;
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), sent, failed };
}

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
      LOG_LEVEL: "info",
      // Counted (in Redis) on every request like any other limit, but never reached by the load.
      RATE_LIMIT_MAX: "1000000000",
      ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
    };
    const app = await serve("app", [process.execPath, "src/main.ts"], appEnv, "/health");
    const user = { username: `bench_${process.pid}`, email: `bench_${process.pid}@example.com`, password: "bench-password-1" };
    const reg = await fetch(`${app.url}/api/v1/users`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(user) });
    if (reg.status !== 201) throw new Error(`register failed: ${reg.status} ${await reg.text()}`);
    const account = (await reg.json()) as Record<string, unknown>;
    const tokenRes = await fetch(`${app.url}/api/v1/auth/token`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ login: user.username, password: user.password }) });
    const { accessToken } = (await tokenRes.json()) as { accessToken: string };
    const auth = { authorization: `Bearer ${accessToken}` };

    const hono = await serve("bare-hono", [process.execPath, "bench/http/bare-hono.ts"], {}, "/health");
    const pg = await serve("bare-pg", [process.execPath, "bench/http/bare-pg.ts"], { DATABASE_URL: db.url, ACCOUNT_ID: String(account.id) }, "/api/v1/users/me");

    // Both sides answer the same thing before they are compared.
    const [mine, theirs] = await Promise.all([fetch(`${app.url}/api/v1/users/me`, { headers: auth }).then((r) => r.json()), fetch(`${pg.url}/api/v1/users/me`).then((r) => r.json())]);
    if (JSON.stringify(mine) !== JSON.stringify(theirs)) throw new Error(`the reference answers differently:\n app ${JSON.stringify(mine)}\n ref ${JSON.stringify(theirs)}`);

    const pairs = [
      { phase: "health", path: "/health", app, ref: hono, refName: "bare Hono on Bun.serve", headers: {}, target: 0.7 },
      { phase: "me", path: "/api/v1/users/me", app, ref: pg, refName: "Bun.serve + postgres.js, same row by primary key", headers: auth, target: 0.5 },
    ];
    for (const p of pairs) {
      if (ONLY && !ONLY.includes(p.phase)) continue;
      const label = `GET ${p.path}${p.headers === auth ? " (signed in)" : ""}`;
      log(`${label}: warm-up`);
      await wrk(bin, p.ref, p.path, WARMUP_SECONDS, p.headers);
      await wrk(bin, p.app, p.path, WARMUP_SECONDS, p.headers);
      log(`${label}: throughput, ${T}s per side`);
      const t = await abba(bin, p.ref, p.app, p.path, p.headers);
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

    console.log(`\nhttp benchmark: ${meta.date}, commit ${meta.gitCommit?.slice(0, 12) ?? "?"}${meta.gitDirty ? " (dirty)" : ""}, ${meta.cpuCount} CPUs, ${meta.pgVersion?.split(" on ")[0]}, BENCH_SECONDS=${T}\n`);
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
    console.log(`\n${targeted.length - missed}/${targeted.length} targets met; results in ${path} and bench/results/http-latest.json (${((nowMs() - started) / 1000).toFixed(0)}s)`);
    return missed && process.env.BENCH_STRICT === "1" ? 2 : 0;
  } finally {
    for (const s of [...servers]) await s.stop();
    await admin.end({ timeout: 2 });
    await dropBenchDatabases();
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (ONLY && !ONLY.some((p) => PHASES.includes(p))) {
  log(`BENCH_ONLY=${process.env.BENCH_ONLY} names none of this benchmark's phases (${PHASES.join(", ")}); skipped`);
  process.exit(0);
}

let stopping = false;
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    log(`${sig}: stopping servers, dropping the bench database`);
    for (const s of servers) s.proc.kill("SIGKILL");
    rmSync(tmp, { recursive: true, force: true });
    void dropBenchDatabases().finally(() => process.exit(130));
  });
}

main().then(
  (code) => process.exit(code),
  async (err) => {
    console.error(err);
    for (const s of servers) s.proc.kill("SIGKILL");
    await dropBenchDatabases();
    rmSync(tmp, { recursive: true, force: true });
    process.exit(1);
  },
);
