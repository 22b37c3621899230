/**
 * Load tools for bench/http.ts: server processes under test, wrk runs with the server's CPU time,
 * and an open-loop fixed-rate client for latency. Not a benchmark itself (bench/run.ts only runs
 * the files directly in bench/).
 */
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { combine, dropBenchDatabases, log, nowMs, percentile } from "../support.ts";

/** No server start waits longer than this. */
const START_TIMEOUT_MS = 60_000;

/** ensureWrk finds wrk, or installs Debian's package when running as root. */
export function ensureWrk(): string {
  const found = Bun.which("wrk");
  if (found) return found;
  if (process.getuid?.() === 0 && Bun.which("apt-get")) {
    const apt = (...args: string[]) =>
      Bun.spawnSync(["apt-get", ...args], { stdout: "ignore", stderr: "pipe", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
    log("wrk is missing: apt-get install -y wrk");
    let r = apt("install", "-y", "wrk");
    if (r.exitCode !== 0) {
      // A fresh image may have no package lists yet.
      apt("update");
      r = apt("install", "-y", "wrk");
    }
    const installed = Bun.which("wrk");
    if (installed) return installed;
    throw new Error(`apt-get install -y wrk failed: ${r.stderr.toString().trim().split("\n").slice(-3).join(" ")}`);
  }
  throw new Error("wrk is not installed; install it (Debian/Ubuntu: apt-get install -y wrk) and run again");
}

/** freePort asks the kernel for a free port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const probe = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
  const port = probe.port!;
  await probe.stop(true);
  return port;
}

/** Served is one server process under test. */
export interface Served {
  name: string;
  url: string;
  proc: Subprocess;
  /** The last lines the process wrote (stdout and stderr), for error messages. */
  tail(): string;
  stop(): Promise<void>;
}

const servers = new Set<Served>();

/** stopServers stops every server still running (SIGTERM, then SIGKILL after 15 s). */
export async function stopServers(): Promise<void> {
  for (const s of [...servers]) await s.stop();
}

/** killServers kills every server still running at once (on a signal or a crash). */
export function killServers(): void {
  for (const s of servers) s.proc.kill("SIGKILL");
}

/**
 * serve starts `cmd` in `opts.cwd` with `env` (plus PATH and HOME) on a free port, its output
 * in files under `opts.logDir`, and waits until `probe` answers 200.
 */
export async function serve(name: string, cmd: string[], env: Record<string, string>, probe: string, opts: { cwd: string; logDir: string }): Promise<Served> {
  const port = await freePort();
  const out = join(opts.logDir, `${name}.out`);
  const err = join(opts.logDir, `${name}.err`);
  const proc = Bun.spawn(cmd, {
    cwd: opts.cwd,
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
export interface WrkResult {
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

/** WrkRun is one load: which wrk, which path, how long, how many connections (one wrk thread), which headers. */
export interface WrkRun {
  bin: string;
  path: string;
  seconds: number;
  connections: number;
  headers: Record<string, string>;
  /** A wrk Lua script (a file path), e.g. to POST a body. */
  script?: string;
}

/** wrk loads `server` as `run` says and reads the server's CPU time around it. */
export async function wrk(server: Served, run: WrkRun): Promise<WrkResult> {
  const { bin, path, seconds, connections, headers } = run;
  const url = `${server.url}${path}`;
  const cpuBefore = cpuSeconds(server.proc.pid);
  const args = [bin, "-t1", `-c${connections}`, `-d${seconds}s`, "--timeout", "5s"];
  for (const [k, v] of Object.entries(headers)) args.push("-H", `${k}: ${v}`);
  if (run.script) args.push("-s", run.script);
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
 * abba runs wrk on the reference, the app, the app again, then the reference again (half of
 * `run.seconds` each), so drift on a shared machine falls on both sides alike.
 */
export async function abba(ref: Served, app: Served, run: WrkRun): Promise<{ ref: WrkResult; app: WrkResult }> {
  const half = { ...run, seconds: Math.max(1, Math.round(run.seconds / 2)) };
  const r1 = await wrk(ref, half);
  const a1 = await wrk(app, half);
  const a2 = await wrk(app, half);
  const r2 = await wrk(ref, half);
  const merge = (x: WrkResult, y: WrkResult) => ({ ...combine(x, y), bad: x.bad + y.bad, cpu: x.cpu + y.cpu });
  return { ref: merge(r1, r2), app: merge(a1, a2) };
}

/** LatencyResult holds per-request latencies (ms) measured from each request's scheduled start. */
export interface LatencyResult {
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
export async function fixedRate(url: string, headers: Record<string, string>, rate: number, seconds: number): Promise<LatencyResult> {
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

/**
 * runServerBenchmark runs `main` and exits with its code. Whatever way it ends (a failure,
 * SIGINT, SIGTERM), the servers it started are killed, its bench databases dropped and
 * `scratchDir` (server logs) removed.
 */
export function runServerBenchmark(main: () => Promise<number>, scratchDir?: string): void {
  const removeScratch = () => scratchDir && rmSync(scratchDir, { recursive: true, force: true });
  let stopping = false;
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.on(sig, () => {
      if (stopping) return;
      stopping = true;
      log(`${sig}: stopping servers, dropping the bench databases`);
      killServers();
      removeScratch();
      void dropBenchDatabases().finally(() => process.exit(130));
    });
  }
  main().then(
    (code) => process.exit(code),
    async (err) => {
      console.error(err);
      killServers();
      await dropBenchDatabases();
      removeScratch();
      process.exit(1);
    },
  );
}
