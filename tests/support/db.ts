import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import postgres from "postgres";
import { startEmbeddedPostgres } from "../../src/db/embedded.ts";
import { runMigrations } from "../../src/db/migrate.ts";

const DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/postgres";

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

function migrationsHash(): string {
  const h = createHash("sha256");
  for (const f of readdirSync("migrations").sort()) if (f.endsWith(".sql")) h.update(readFileSync(`migrations/${f}`));
  return h.digest("hex").slice(0, 12);
}

async function reachable(url: string): Promise<boolean> {
  const sql = postgres(url, { max: 1, connect_timeout: 2, onnotice: () => {} });
  try {
    await sql`select 1`;
    return true;
  } catch {
    return false;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/**
 * prepareTemplate finds a server (TEST_DATABASE_URL, DATABASE_URL, local Postgres, or an
 * embedded one as the last resort) and makes sure a template database migrated with the
 * current migrations exists there. Returns a stop function for an embedded server.
 */
export async function prepareTemplate(): Promise<(() => Promise<void>) | undefined> {
  let base = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? DEFAULT_URL;
  let stop: (() => Promise<void>) | undefined;
  if (!(await reachable(base))) {
    if (process.env.TEST_DATABASE_URL || process.env.DATABASE_URL) throw new Error(`test database ${base} is not reachable`);
    const embedded = await startEmbeddedPostgres(".data/test-postgres", 54330, () => {});
    base = embedded.url;
    stop = embedded.stop;
  }
  const template = `tmpl_${migrationsHash()}`;
  const admin = postgres(base, { max: 1, onnotice: () => {} });
  try {
    await admin`select pg_advisory_lock(727274002)`;
    const [exists] = await admin`select datistemplate from pg_database where datname = ${template}`;
    // A template left half-built by an interrupted run is not marked as a template: rebuild it.
    if (exists && !exists.datistemplate) await admin.unsafe(`drop database "${template}" with (force)`);
    if (!exists?.datistemplate) {
      await admin.unsafe(`create database "${template}"`);
      await runMigrations(withDatabase(base, template), "migrations");
      await admin.unsafe(`alter database "${template}" with is_template true`);
    }
    // Clones left by an interrupted run (a test file that never reached afterAll) are dropped once
    // they are an hour old; their names carry their creation time, so a concurrent run's are safe.
    const stale = await admin<{ datname: string }[]>`select datname from pg_database where datname like 'test\_%'`;
    for (const { datname } of stale) {
      const born = Number.parseInt(datname.split("_")[1] ?? "", 36);
      if (Number.isFinite(born) && Date.now() - born > 3_600_000) await admin.unsafe(`drop database if exists "${datname}" with (force)`);
    }
    await admin`select pg_advisory_unlock(727274002)`;
  } finally {
    await admin.end({ timeout: 2 });
  }
  process.env.TEST_PG_BASE = base;
  process.env.TEST_PG_TEMPLATE = template;
  return stop;
}

/** TestDatabase is a fresh database cloned from the migrated template. */
export interface TestDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

/**
 * createTestDatabase clones the template (a file copy: milliseconds, migrations included).
 *
 * @example const tdb = await createTestDatabase(); afterAll(() => tdb.drop());
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  const base = process.env.TEST_PG_BASE;
  const template = process.env.TEST_PG_TEMPLATE;
  if (!base || !template) throw new Error("tests/support/preload.ts did not run (bunfig.toml [test] preload)");
  const name = `test_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = postgres(base, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`create database "${name}" template "${template}"`);
  } finally {
    await admin.end({ timeout: 2 });
  }
  return {
    name,
    url: withDatabase(base, name),
    async drop() {
      const a = postgres(base, { max: 1, onnotice: () => {} });
      try {
        await a.unsafe(`drop database if exists "${name}" with (force)`);
      } finally {
        await a.end({ timeout: 2 });
      }
    },
  };
}
