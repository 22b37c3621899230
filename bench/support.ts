/**
 * Shared helpers for the benchmarks in bench/: throwaway databases, time-bounded load loops,
 * percentiles, the result table and the results JSON. Not a benchmark itself (bench/run.ts
 * skips it).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { runMigrations } from "../src/db/migrate.ts";

export const DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/postgres";
const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);

/** baseUrl is the server the benchmarks use: DATABASE_URL or the local default; loopback only. */
export function baseUrl(): string {
  const url = process.env.DATABASE_URL ?? DEFAULT_URL;
  const host = new URL(url).hostname;
  if (!LOOPBACK.has(host)) throw new Error(`benchmarks only run against a local server (127.0.0.1); DATABASE_URL points at ${host}`);
  return url;
}

/** withDatabase returns `url` pointing at database `name`. */
export function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

/**
 * selectedPhases is the subset of a benchmark's `phases` that BENCH_ONLY (a comma list) names:
 * all of them when it is unset or names the benchmark itself, none when it names only other
 * benchmarks' phases (the benchmark then skips its run and writes no results).
 */
export function selectedPhases(benchmark: string, phases: readonly string[]): string[] {
  const only = process.env.BENCH_ONLY?.split(",")
    .map((p) => p.trim())
    .filter(Boolean);
  if (!only?.length || only.includes(benchmark)) return [...phases];
  return phases.filter((p) => only.includes(p));
}

/** Default length of one measured phase, in seconds; BENCH_SECONDS overrides it. */
export const DEFAULT_PHASE_SECONDS = 6;

/** phaseSeconds is the length of one measured phase (BENCH_SECONDS, default 6). */
export function phaseSeconds(): number {
  const v = Number(process.env.BENCH_SECONDS);
  return Number.isFinite(v) && v > 0 ? Math.min(v, 120) : DEFAULT_PHASE_SECONDS;
}

/** scale is BENCH_SECONDS relative to the default: counts and other durations are multiplied by it. */
export function scale(): number {
  return phaseSeconds() / DEFAULT_PHASE_SECONDS;
}

/** BenchDatabase is a database created for one run and dropped at its end. */
export interface BenchDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

const created = new Set<BenchDatabase>();
const runStamp = new Date().toISOString().replace(/\D/g, "").slice(0, 14);

/**
 * createBenchDatabase creates `bench_<timestamp>[_suffix]` from scratch on the base server,
 * optionally applying the project's migrations through runMigrations.
 */
export async function createBenchDatabase(opts: { suffix?: string; migrate?: boolean } = {}): Promise<BenchDatabase> {
  const base = baseUrl();
  const name = `bench_${runStamp}_${process.pid}${opts.suffix ? `_${opts.suffix}` : ""}`;
  const admin = postgres(base, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`drop database if exists "${name}" with (force)`);
    await admin.unsafe(`create database "${name}"`);
  } finally {
    await admin.end({ timeout: 2 });
  }
  const url = withDatabase(base, name);
  const db: BenchDatabase = {
    name,
    url,
    async drop() {
      created.delete(db);
      const a = postgres(base, { max: 1, onnotice: () => {} });
      try {
        await a.unsafe(`drop database if exists "${name}" with (force)`);
      } finally {
        await a.end({ timeout: 2 });
      }
    },
  };
  created.add(db);
  if (opts.migrate !== false) await runMigrations(url, "migrations");
  return db;
}

/**
 * serverEnv is the configuration of a server a benchmark runs in its own process on `url`:
 * silent, on a free loopback port, rate limits out of the way, explicit secrets (so a run
 * generates nothing into .data/). `extra` adds to it or overrides it.
 */
export function serverEnv(url: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    NODE_ENV: "test",
    DATABASE_URL: url,
    LOG_LEVEL: "silent",
    PORT: "0",
    HOST: "127.0.0.1",
    WORKER_POLL_MS: "1000",
    RATE_LIMIT_MAX: "1000000000",
    RATE_LIMIT_IP_MAX: "1000000000",
    ADMIN_PASSWORD: "bench-admin-password",
    JWT_SECRET: `bench-${crypto.randomUUID()}`,
    ...extra,
  };
}

/** dropBenchDatabases drops every database this process created and has not dropped yet. */
export async function dropBenchDatabases(): Promise<void> {
  for (const db of [...created]) await db.drop().catch((err) => console.error(`could not drop ${db.name}: ${err}`));
}

/** nowMs is a monotonic clock in milliseconds. */
export const nowMs = (): number => performance.now();

/** wallMs is wall-clock time in milliseconds with sub-millisecond resolution (comparable across callbacks). */
export const wallMs = (): number => performance.timeOrigin + performance.now();

export interface LoopResult {
  ops: number;
  seconds: number;
  rate: number;
}

/** No load loop starts more operations than this, whatever its duration. */
export const MAX_OPS = 5_000_000;

/**
 * runLoop runs `op` from `concurrency` loops until `seconds` have passed or `maxOps` ops
 * (default MAX_OPS) were started, whichever comes first. `op` gets a global op index.
 */
export async function runLoop(
  opts: { seconds: number; concurrency: number; maxOps?: number },
  op: (i: number, worker: number) => Promise<unknown>,
): Promise<LoopResult> {
  const maxOps = Math.min(opts.maxOps ?? MAX_OPS, MAX_OPS);
  const started = nowMs();
  const deadline = started + opts.seconds * 1000;
  let next = 0;
  let done = 0;
  await Promise.all(
    Array.from({ length: opts.concurrency }, async (_, w) => {
      while (nowMs() < deadline && next < maxOps) {
        const i = next++;
        await op(i, w);
        done++;
      }
    }),
  );
  const seconds = (nowMs() - started) / 1000;
  return { ops: done, seconds, rate: done / seconds };
}

/** combine merges runs of the same side (e.g. the two halves of an A-B-B-A comparison). */
export function combine(...runs: LoopResult[]): LoopResult {
  const ops = runs.reduce((s, r) => s + r.ops, 0);
  const seconds = runs.reduce((s, r) => s + r.seconds, 0);
  return { ops, seconds, rate: ops / seconds };
}

/** waitUntil polls `cond` every `everyMs` until it is true or `timeoutMs` passed; returns whether it became true. */
export async function waitUntil(cond: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 20): Promise<boolean> {
  const deadline = nowMs() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (nowMs() >= deadline) return false;
    await Bun.sleep(everyMs);
  }
}

/** percentile is the nearest-rank percentile (p in 0-100) of `values`; NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

/** Figure is one measured number beside its reference and target. */
export interface Figure {
  name: string;
  value: number;
  unit: string;
  reference: string;
  referenceValue: number;
  /** value / referenceValue. */
  ratio: number;
  /** Human-readable target, e.g. "ratio >= 0.7". */
  target: string;
  pass: boolean;
  note?: string;
}

/** Target is a check over a figure's value and ratio. */
export type Target = { ratioAtLeast?: number; valueAtLeast?: number; valueBelow?: number; ratioAbove?: number };

/** INFO is the target text of a figure shown for context only (it always passes). */
export const INFO = "info only";

/** figure builds a Figure, computing the ratio and checking every given bound. */
export function figure(f: { name: string; value: number; unit: string; reference: string; referenceValue: number; target: Target; note?: string }): Figure {
  const ratio = f.referenceValue ? f.value / f.referenceValue : Number.NaN;
  const t = f.target;
  const parts: string[] = [];
  let pass = Number.isFinite(f.value);
  if (t.ratioAtLeast !== undefined) {
    parts.push(`ratio >= ${t.ratioAtLeast}`);
    pass &&= ratio >= t.ratioAtLeast;
  }
  if (t.ratioAbove !== undefined) {
    parts.push(`ratio > ${t.ratioAbove}`);
    pass &&= ratio > t.ratioAbove;
  }
  if (t.valueAtLeast !== undefined) {
    parts.push(`>= ${t.valueAtLeast} ${f.unit}`);
    pass &&= f.value >= t.valueAtLeast;
  }
  if (t.valueBelow !== undefined) {
    parts.push(`< ${t.valueBelow} ${f.unit}`);
    pass &&= f.value < t.valueBelow;
  }
  return {
    name: f.name,
    value: round(f.value),
    unit: f.unit,
    reference: f.reference,
    referenceValue: round(f.referenceValue),
    ratio: round(ratio, 3),
    target: parts.join(" and ") || INFO,
    pass,
    ...(f.note ? { note: f.note } : {}),
  };
}

function round(v: number, digits?: number): number {
  if (!Number.isFinite(v)) return v;
  const d = digits ?? (Math.abs(v) >= 100 ? 0 : 2);
  const m = 10 ** d;
  return Math.round(v * m) / m;
}

/** formatTable renders figures as a plain-text table. */
export function formatTable(figures: readonly Figure[]): string {
  const header = ["name", "value", "unit", "reference", "ref value", "ratio", "target", "result"];
  const rows = figures.map((f) => [
    f.name,
    String(f.value),
    f.unit,
    f.reference,
    String(f.referenceValue),
    Number.isFinite(f.ratio) ? f.ratio.toFixed(3) : "-",
    f.target,
    f.target === INFO ? "INFO" : f.pass ? "PASS" : "MISS",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const numeric = new Set([1, 4, 5]);
  const line = (cells: string[]) => cells.map((c, i) => (numeric.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ");
  const notes = figures.filter((f) => f.note).map((f) => `  * ${f.name}: ${f.note}`);
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line), ...(notes.length ? ["", "notes:", ...notes] : [])].join("\n");
}

/** RunMeta describes where and when a benchmark ran. */
export interface RunMeta {
  benchmark: string;
  date: string;
  gitCommit: string | null;
  gitDirty: boolean | null;
  cpuCount: number;
  cpuModel: string | null;
  pgVersion: string | null;
  bunVersion: string;
  phaseSeconds: number;
}

function git(args: string[]): string | null {
  try {
    // --no-optional-locks: never touch the index while others work in the tree.
    const r = Bun.spawnSync(["git", "--no-optional-locks", ...args], { stdout: "pipe", stderr: "ignore" });
    return r.exitCode === 0 ? r.stdout.toString().trim() : null;
  } catch {
    return null;
  }
}

/** runMeta gathers the run metadata; `sql` is any connection to the benchmarked server. */
export async function runMeta(benchmark: string, sql: postgres.Sql): Promise<RunMeta> {
  const [v] = await sql<{ version: string }[]>`select version()`.catch(() => [{ version: null as unknown as string }]);
  const status = git(["status", "--porcelain", "--untracked-files=no"]);
  return {
    benchmark,
    date: new Date().toISOString(),
    gitCommit: git(["rev-parse", "HEAD"]),
    gitDirty: status === null ? null : status.length > 0,
    cpuCount: cpus().length,
    cpuModel: cpus()[0]?.model ?? null,
    pgVersion: v?.version ?? null,
    bunVersion: Bun.version,
    phaseSeconds: phaseSeconds(),
  };
}

/**
 * writeResults writes `bench/results/<benchmark>-<ISO timestamp>.json` and
 * `bench/results/<benchmark>-latest.json`; returns the timestamped path.
 */
export function writeResults(meta: RunMeta, figures: readonly Figure[], extra: Record<string, unknown> = {}): string {
  const dir = join(import.meta.dir, "results");
  mkdirSync(dir, { recursive: true });
  const stamp = meta.date.replace(/:/g, "-");
  const body = `${JSON.stringify({ ...meta, figures, ...extra }, null, 2)}\n`;
  const path = join(dir, `${meta.benchmark}-${stamp}.json`);
  writeFileSync(path, body);
  writeFileSync(join(dir, `${meta.benchmark}-latest.json`), body);
  return path;
}

/** log prints a progress line to stderr so stdout stays the table. */
export function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}
