/**
 * `bun run bench`: runs every benchmark in bench/ (each `*.ts` here except this runner and the
 * shared support module), one after the other, each in its own process so pools, timers and
 * databases never leak between them. Exits non-zero if a benchmark failed to run; a missed
 * target is reported in its table (set BENCH_STRICT=1 to make misses fail the run too).
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";

const NOT_BENCHMARKS = new Set(["run.ts", "support.ts"]);
const dir = import.meta.dir;
const only = process.argv.slice(2);
const benches = readdirSync(dir)
  .filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts") && !NOT_BENCHMARKS.has(f))
  .filter((f) => only.length === 0 || only.some((o) => f === o || f === `${o}.ts`))
  .sort();

if (benches.length === 0) {
  console.error(`no benchmarks found in ${dir}${only.length ? ` matching ${only.join(", ")}` : ""}`);
  process.exit(1);
}

// On Ctrl-C or a kill, pass the signal on and wait for the benchmark to drop its databases
// instead of dying first (it ignores a repeat of the signal while it cleans up).
let current: ReturnType<typeof Bun.spawn> | undefined;
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => current?.kill(sig));

const failed: string[] = [];
for (const file of benches) {
  console.log(`\n=== ${file} ===`);
  const started = performance.now();
  const proc = (current = Bun.spawn([process.execPath, join(dir, file)], {
    stdout: "inherit",
    stderr: "inherit",
    env: { ...process.env },
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
