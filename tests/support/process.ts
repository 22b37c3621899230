import { connect } from "node:net";
import { resolve } from "node:path";
import type { Subprocess } from "bun";
import { eventually } from "./eventually.ts";

/** ROOT is the repository root, so spawned processes find `src/`, `migrations/` and `node_modules/`. */
export const ROOT = resolve(import.meta.dir, "../..");

/** TEST_PROCESS_SECRETS are the secrets spawnApp gives every process unless `env` overrides them. */
export const TEST_PROCESS_SECRETS = { JWT_SECRET: `process-test-secret-${crypto.randomUUID()}`, ADMIN_PASSWORD: "process-admin-password" } as const;

/** freePort asks the kernel for a free TCP port on 127.0.0.1 (bind 0, read it, release it). */
export async function freePort(): Promise<number> {
  const probe = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
  const port = probe.port!;
  await probe.stop(true);
  return port;
}

/** connectOutcome opens a fresh TCP connection (never a pooled one) and says how it went. */
export function connectOutcome(port: number): Promise<"connected" | string> {
  return new Promise((done) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      done("connected");
    });
    socket.once("error", (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
  });
}

/** newUser builds a registration body whose username (3-30 of a-z, 0-9, _) no other run uses. */
export function newUser(prefix: string): { username: string; email: string; password: string } {
  const username = `${prefix}_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`.slice(0, 30);
  return { username, email: `${username}@example.com`, password: "password123" };
}

/** AppProcess is a spawned server process with its combined output captured. */
export interface AppProcess {
  readonly proc: Subprocess;
  readonly port: number;
  readonly url: string;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Resolves with the exit code once the process exited and its output is read to the end. */
  finished(): Promise<number>;
  /** Resolves once `path` answers 200; fails early with the output if the process exits. */
  ready(path?: string, timeoutMs?: number): Promise<void>;
  /** Sends `signal` (default SIGTERM) and resolves with the exit code, SIGKILLing after `graceMs`. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | null>;
}

const running = new Set<Subprocess>();

/**
 * spawnApp starts `cmd` with the test environment plus `env`: keys set to undefined are removed
 * (e.g. `DATABASE_URL: undefined` for the embedded database). REDIS_URL is dropped unless given,
 * so a probe never depends on a Redis the test did not ask for. It runs in the repository root
 * unless `opts.cwd` says otherwise. Kill leftovers with `killAll()`.
 *
 * @example const app = spawnApp(["bun", "src/main.ts"], { DATABASE_URL: tdb.url, PORT: String(port) }, port)
 */
export function spawnApp(cmd: string[], env: Record<string, string | undefined>, port: number, opts: { cwd?: string } = {}): AppProcess {
  const merged: Record<string, string | undefined> = {
    ...process.env,
    REDIS_URL: undefined,
    NODE_ENV: "test",
    HOST: "127.0.0.1",
    LOG_LEVEL: "warn",
    // Explicit test secrets: nothing in the source has a default, and without them a process
    // would generate its own into SECRETS_FILE.
    JWT_SECRET: TEST_PROCESS_SECRETS.JWT_SECRET,
    ADMIN_PASSWORD: TEST_PROCESS_SECRETS.ADMIN_PASSWORD,
    ...env,
    PORT: String(port),
  };
  const clean = Object.fromEntries(Object.entries(merged).filter((e): e is [string, string] => e[1] !== undefined));
  const proc = Bun.spawn(cmd, { cwd: opts.cwd ?? ROOT, env: clean, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  running.add(proc);
  void proc.exited.then(() => running.delete(proc));
  let out = "";
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) out += decoder.decode(chunk, { stream: true });
  };
  const drained = Promise.all([pump(proc.stdout), pump(proc.stderr)]).catch(() => {});
  const url = `http://127.0.0.1:${port}`;
  return {
    proc,
    port,
    url,
    output: () => out,
    finished: async () => {
      const code = await proc.exited;
      await drained;
      return code;
    },
    async ready(path = "/ready", timeoutMs = 20_000) {
      const exited = proc.exited.then((code) => {
        throw new Error(`${cmd.join(" ")} exited with ${code} before ${path} answered 200:\n${out}`);
      });
      // keepalive: false so every probe is a new connection, never one left over from a pool.
      const up = eventually(async () => (await fetch(url + path, { keepalive: false })).status === 200, timeoutMs, 50);
      await Promise.race([up, exited]);
    },
    async stop(signal = "SIGTERM", graceMs = 10_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill(signal);
      const timer = setTimeout(() => proc.kill("SIGKILL"), graceMs);
      try {
        return await proc.exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** killAll SIGKILLs every process spawnApp started that is still running: call it in afterAll. */
export async function killAll(): Promise<void> {
  const left = [...running];
  for (const p of left) p.kill("SIGKILL");
  await Promise.all(left.map((p) => p.exited));
}
