import type { Subprocess } from "bun";
import { ROOT } from "./process.ts";

/** WorkerProcess is a `worker-child.ts` process: one subscription, effects tagged with its name. */
export interface WorkerProcess {
  readonly name: string;
  readonly proc: Subprocess<"ignore", "pipe", "inherit">;
}

const running = new Set<WorkerProcess>();

/**
 * spawnWorker starts `tests/support/worker-child.ts` against `dbUrl` with `env` (WORKER names
 * it; see the child for PARTITIONS, BATCH, LEASE_SECONDS, POLL_MS, HANDLER_DELAY_MS) and
 * resolves once its outbox has started. Kill leftovers with `killWorkers()`.
 */
export async function spawnWorker(dbUrl: string, env: Record<string, string> & { WORKER: string }): Promise<WorkerProcess> {
  const proc = Bun.spawn(["bun", "tests/support/worker-child.ts"], {
    cwd: ROOT,
    env: { ...process.env, DB_URL: dbUrl, ...env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "inherit",
  });
  const worker = { name: env.WORKER, proc };
  running.add(worker);
  void proc.exited.then(() => running.delete(worker));
  const reader = proc.stdout.getReader();
  let out = "";
  while (!out.includes("ready")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`worker ${env.WORKER} exited before it was ready`);
    out += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return worker;
}

/** killWorkers SIGKILLs every worker spawnWorker started that is still running (paused ones too). */
export async function killWorkers(): Promise<void> {
  const left = [...running];
  for (const w of left) w.proc.kill("SIGKILL");
  await Promise.all(left.map((w) => w.proc.exited));
}
