import { drizzle } from "drizzle-orm/postgres-js";
import { migrate } from "drizzle-orm/postgres-js/migrator";
import postgres from "postgres";

// Any constant works; it only has to be the same for every replica of this application.
const MIGRATION_LOCK_KEY = 727_274_001;

/**
 * runMigrations applies pending migrations under a session advisory lock, so replicas that
 * start together apply them once; the others wait and then find nothing to do.
 */
export async function runMigrations(url: string, migrationsFolder: string): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await sql`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`;
    try {
      await migrate(drizzle(sql), { migrationsFolder });
    } finally {
      await sql`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`;
    }
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** pendingMigrations counts migrations in the folder that the database has not applied. */
export async function pendingMigrations(sql: postgres.Sql, migrationsFolder: string): Promise<number> {
  const journal = (await Bun.file(`${migrationsFolder}/meta/_journal.json`).json()) as { entries: unknown[] };
  const [row] = await sql<{ n: number }[]>`
    select count(*)::int as n from drizzle.__drizzle_migrations`.catch(() => [{ n: 0 }]);
  return Math.max(0, journal.entries.length - (row?.n ?? 0));
}
