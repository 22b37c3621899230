import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eventually } from "../support/eventually.ts";
import { type AppProcess, freePort, killAll, newUser, spawnApp } from "../support/process.ts";

// initdb plus two or three Postgres starts: far slower than the default per-test timeout.
const SLOW = 60_000;

let dir: string;
let pgDir: string;
let pgPort: number;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "embedded-pg-"));
  // As root, Postgres runs as the unprivileged `postgres` user, which must reach the data dir.
  chmodSync(dir, 0o755);
  pgDir = join(dir, "pg");
  pgPort = await freePort();
});

afterAll(async () => {
  await killAll();
  // A Postgres outliving its (killed) parent would keep the port and the directory: stop it.
  const pid = postmasterPid();
  if (pid) {
    try {
      process.kill(pid, "SIGINT");
      await eventually(() => !alive(pid), 10_000, 50);
    } catch {
      if (alive(pid)) process.kill(pid, "SIGKILL");
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

function postmasterPid(): number | undefined {
  const file = join(pgDir, "postmaster.pid");
  return existsSync(file) ? Number(readFileSync(file, "utf8").split("\n")[0]) || undefined : undefined;
}

/** alive: the process exists and is not a zombie (an orphan whose new parent has not reaped it yet has exited all the same). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // /proc/<pid>/stat: "pid (comm) S ..."; the state follows the last ")".
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

async function start(): Promise<AppProcess> {
  // info, because the start-up lines that say "initialising" or "reusing" are what is asserted.
  const app = spawnApp(
    ["bun", "src/main.ts"],
    { DATABASE_URL: undefined, EMBEDDED_PG_DIR: pgDir, EMBEDDED_PG_PORT: String(pgPort), LOG_LEVEL: "info" },
    await freePort(),
  );
  await app.ready("/ready", 45_000);
  return app;
}

async function login(app: AppProcess, login: string, password: string): Promise<Response> {
  return fetch(`${app.url}/api/v1/auth/token`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ login, password }) });
}

describe("bun src/main.ts without DATABASE_URL (embedded Postgres)", () => {
  const user = newUser("emb");

  it(
    "initialises Postgres in EMBEDDED_PG_DIR, serves, and stops it on SIGTERM",
    async () => {
      const app = await start();
      expect(app.output()).toContain(`initialising embedded Postgres in ${pgDir}`);
      expect((await fetch(`${app.url}/ready`)).status).toBe(200);

      const res = await fetch(`${app.url}/api/v1/users`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(user) });
      expect(res.status).toBe(201);

      expect(await app.stop("SIGTERM")).toBe(0);
      // Postgres was shut down with the app, not left behind.
      expect(postmasterPid()).toBeUndefined();
    },
    SLOW,
  );

  it(
    "reuses the data directory on the next start (the user can still log in) and refuses a second app on it",
    async () => {
      const app = await start();
      expect(app.output()).toContain(`reusing embedded Postgres data in ${pgDir}`);
      expect(app.output()).not.toContain("initialising embedded Postgres");
      const res = await login(app, user.username, user.password);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ tokenType: "Bearer" });

      // A second app on the same directory must not take the database from under the first.
      const second = spawnApp(["bun", "src/main.ts"], { DATABASE_URL: undefined, EMBEDDED_PG_DIR: pgDir, EMBEDDED_PG_PORT: String(pgPort) }, await freePort());
      expect(await second.proc.exited).toBe(1);
      expect(second.output()).toContain(`embedded Postgres in ${pgDir} is in use by another running process (pid ${app.proc.pid}`);
      expect((await login(app, user.username, user.password)).status).toBe(200);
      // Killed hard: nothing runs on exit, so Postgres outlives the app (the next test's case).
      await app.stop("SIGKILL");
      expect(app.proc.signalCode).toBe("SIGKILL");
    },
    SLOW,
  );

  it(
    "recovers when a killed app left its Postgres running on the directory",
    async () => {
      const orphan = postmasterPid();
      expect(orphan && alive(orphan)).toBe(true);
      const app = await start();
      expect(app.output()).toContain(`stopping embedded Postgres (pid ${orphan}) left running on ${pgDir}`);
      expect((await login(app, user.username, user.password)).status).toBe(200);
      expect(await app.stop("SIGTERM")).toBe(0);
      expect(alive(orphan!)).toBe(false);
    },
    SLOW,
  );

  it(
    "removes a stale postmaster.pid whose pid now belongs to another process",
    async () => {
      // After a crash the pid may be reused; Postgres would then refuse to start ("lock file exists").
      writeFileSync(join(pgDir, "postmaster.pid"), `${process.pid}\n${pgDir}\n`);
      const app = await start();
      expect(app.output()).toContain("removing stale");
      expect((await login(app, user.username, user.password)).status).toBe(200);
      expect(await app.stop("SIGTERM")).toBe(0);
    },
    SLOW,
  );
});
