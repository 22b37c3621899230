import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { drizzle } from "drizzle-orm/postgres-js";
import { migrate } from "drizzle-orm/postgres-js/migrator";
import postgres from "postgres";

// Any constant works; it only has to be the same for every replica of this application.
const MIGRATION_LOCK_KEY = 727_274_001;
// Generous for any reachable server (a few round trips), short enough to fail a start within seconds.
const CONNECT_TIMEOUT_SECONDS = 3;

/**
 * runMigrations applies pending migrations under a session advisory lock, so replicas that
 * start together apply them once; the others wait and then find nothing to do.
 */
export async function runMigrations(url: string, migrationsFolder: string): Promise<void> {
  if (!existsSync(join(migrationsFolder, "meta", "_journal.json"))) {
    throw new Error(
      `MIGRATIONS_DIR ${resolve(migrationsFolder)} holds no drizzle migrations (meta/_journal.json is missing); set MIGRATIONS_DIR to the project's migrations folder.`,
    );
  }
  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: CONNECT_TIMEOUT_SECONDS });
  // Start-up is where a wrong DATABASE_URL shows: fail within seconds. postgres.js alone keeps
  // retrying a host that never answers while a query waits, so the first contact has a deadline.
  try {
    const answered = await Promise.race([sql`select 1`.then(() => true), Bun.sleep(CONNECT_TIMEOUT_SECONDS * 1000).then(() => false)]);
    if (!answered) throw Object.assign(new Error(`no answer within ${CONNECT_TIMEOUT_SECONDS} s`), { code: "CONNECT_TIMEOUT" });
  } catch (err) {
    await sql.end({ timeout: 0 });
    throw new Error(explainConnectError(err, url), { cause: err });
  }
  try {
    await sql`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`;
    try {
      await migrate(drizzle(sql), { migrationsFolder });
    } catch (err) {
      throw new Error(
        `applying the migrations in ${resolve(migrationsFolder)} to ${describeUrl(url)} failed: ${failure(err)}. They run in one transaction, so none of them is applied; fix the migration or the database, then start again.`,
        { cause: err },
      );
    } finally {
      await sql`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`.catch(() => {});
    }
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** describeUrl names a database URL's host, port and database, never its password. */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || 5432}${u.pathname}`;
  } catch {
    return "DATABASE_URL";
  }
}

/** explainConnectError turns a failed first connection into a message saying what to check. */
export function explainConnectError(err: unknown, url: string): string {
  const e = err as { code?: string; message?: string };
  const where = describeUrl(url);
  const what = e.message ?? String(err);
  switch (e.code) {
    case "28P01":
    case "28000":
      return `the database at ${where} refused the user and password in DATABASE_URL (${what}); fix them in DATABASE_URL.`;
    case "3D000":
      return `the database at ${where} does not exist (${what}); create it (createdb) or fix the database name in DATABASE_URL.`;
    default:
      return `cannot connect to the database at ${where} (${e.code ?? what}); check that Postgres runs there and that DATABASE_URL is right, or unset DATABASE_URL to use the embedded database.`;
  }
}

/** failure names what went wrong: Postgres' own error when there is one, not the whole failed SQL. */
function failure(err: unknown): string {
  const cause = (err as { cause?: { message?: string; code?: string } }).cause;
  if (cause?.message) return `${cause.message}${cause.code ? ` (${cause.code})` : ""}`;
  const message = err instanceof Error ? err.message : String(err);
  return message.length > 300 ? `${message.slice(0, 300)}...` : message;
}

/** pendingMigrations counts migrations in the folder that the database has not applied. */
export async function pendingMigrations(sql: postgres.Sql, migrationsFolder: string): Promise<number> {
  const journal = (await Bun.file(`${migrationsFolder}/meta/_journal.json`).json()) as { entries: unknown[] };
  const [row] = await sql<{ n: number }[]>`
    select count(*)::int as n from drizzle.__drizzle_migrations`.catch(() => [{ n: 0 }]);
  return Math.max(0, journal.entries.length - (row?.n ?? 0));
}
