/**
 * `bun run bench`: runs every benchmark in bench/ (each `*.ts` here except this runner and the
 * shared support module), one after the other, each in its own process so pools, timers and
 * databases never leak between them. Exits non-zero if a benchmark failed to run; a missed
 * target is reported in its table (set BENCH_STRICT=1 to make misses fail the run too).
 *
 * Benchmarks can be chosen by name, as arguments (`bun bench/run.ts http`) or in BENCH_ONLY
 * (`BENCH_ONLY=http bun run bench`); the other BENCH_ONLY entries name phases and are passed on
 * (`BENCH_ONLY=append,latency` runs those phases of whichever benchmark has them).
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";

const NOT_BENCHMARKS = new Set(["run.ts", "support.ts"]);
const dir = import.meta.dir;
const all = readdirSync(dir)
  .filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts") && !NOT_BENCHMARKS.has(f))
  .sort();
const names = new Set(all.map((f) => f.replace(/\.ts$/, "")));
const listed = (process.env.BENCH_ONLY ?? "")
  .split(",")
  .map((x) => x.trim())
  .filter(Boolean);
const only = [...process.argv.slice(2), ...listed.filter((x) => names.has(x) || names.has(x.replace(/\.ts$/, "")))];
const phases = listed.filter((x) => !only.includes(x));
const benches = all.filter((f) => only.length === 0 || only.some((o) => f === o || f === `${o}.ts`));

if (benches.length === 0) {
  console.error(`no benchmarks found in ${dir}${only.length ? ` matching ${only.join(", ")}` : ""}`);
  process.exit(1);
}

// On Ctrl-C or a kill, pass the signal on and wait for the benchmark to drop its databases
// instead of dying first (it ignores a repeat of the signal while it cleans up).
let current: ReturnType<typeof Bun.spawn> | undefined;
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => current?.kill(sig));

const childEnv: Record<string, string | undefined> = { ...process.env };
if (phases.length) childEnv.BENCH_ONLY = phases.join(",");
else delete childEnv.BENCH_ONLY;

const failed: string[] = [];
for (const file of benches) {
  console.log(`\n=== ${file} ===`);
  const started = performance.now();
  const proc = (current = Bun.spawn([process.execPath, join(dir, file)], {
    stdout: "inherit",
    stderr: "inherit",
    env: childEnv,
  }));
  const code = await proc.exited;
  current = undefined;
  console.log(`=== ${file}: exit ${code} in ${((performance.now() - started) / 1000).toFixed(0)}s ===`);
  if (code !== 0) failed.push(file);
  if (code === 130) break;
}

if (failed.length) {
  console.error(`\nbenchmarks failed: ${failed.join(", ")}`);
  process.exit(1);
}
