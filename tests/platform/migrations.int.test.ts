import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { runMigrations } from "../../src/db/migrate.ts";
import { eventually } from "../support/eventually.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

const MIGRATIONS = "migrations";
// The advisory lock key runMigrations takes (src/db/migrate.ts); held here to prove it is taken.
const MIGRATION_LOCK_KEY = 727_274_001;
const journal = (await Bun.file(`${MIGRATIONS}/meta/_journal.json`).json()) as { entries: { tag: string; when: number }[] };

// These tests need databases without the template's migrations, so they create their own empty
// ones next to the per-file clones (never touching the server's default database's contents).
const base = process.env.TEST_PG_BASE!;
const admin = postgres(base, { max: 1, onnotice: () => {} });
const created: string[] = [];

async function emptyDatabase(): Promise<{ url: string; sql: postgres.Sql }> {
  const name = `mig_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  await admin.unsafe(`create database "${name}" template template0`);
  created.push(name);
  const u = new URL(base);
  u.pathname = `/${name}`;
  const url = u.toString();
  return { url, sql: postgres(url, { max: 2, onnotice: () => {} }) };
}

const opened: postgres.Sql[] = [];
afterAll(async () => {
  await Promise.all(opened.map((s) => s.end({ timeout: 2 })));
  for (const name of created) await admin.unsafe(`drop database if exists "${name}" with (force)`);
  await admin.end({ timeout: 2 });
});

async function migrationRows(sql: postgres.Sql) {
  return sql`select id, hash, created_at::text from drizzle.__drizzle_migrations order by id`;
}

/** schemaDump describes every user schema object through information_schema (plus indexes, which it lacks). */
async function schemaDump(sql: postgres.Sql) {
  const user = sql`not in ('pg_catalog', 'information_schema', 'pg_toast')`;
  return {
    schemas:
      await sql`select schema_name from information_schema.schemata where schema_name ${user} and schema_name not like 'pg_temp%' and schema_name not like 'pg_toast_temp%' order by 1`,
    columns: await sql`
      select table_schema, table_name, column_name, ordinal_position, data_type, is_nullable, column_default, is_identity
      from information_schema.columns where table_schema ${user} order by 1, 2, 4`,
    constraints: await sql`
      select constraint_schema, table_name, constraint_name, constraint_type
      from information_schema.table_constraints where constraint_schema ${user} order by 1, 2, 3`,
    indexes: await sql`select schemaname, tablename, indexname, indexdef from pg_indexes where schemaname ${user} order by 1, 2, 3`,
    routines: await sql`select routine_schema, routine_name, routine_type from information_schema.routines where routine_schema ${user} order by 1, 2`,
  };
}

describe("runMigrations", () => {
  it("applies every journal entry once and a second run changes nothing", async () => {
    const { url, sql } = await emptyDatabase();
    opened.push(sql);

    await runMigrations(url, MIGRATIONS);
    const rows = await migrationRows(sql);
    const dump = await schemaDump(sql);
    expect(rows.map((r) => Number(r.created_at))).toEqual(journal.entries.map((e) => e.when));
    expect(dump.columns.length).toBeGreaterThan(0);

    await runMigrations(url, MIGRATIONS);
    expect(await migrationRows(sql)).toEqual(rows);
    expect(await schemaDump(sql)).toEqual(dump);
  });

  it("lets two concurrent runs on an empty database both succeed, applying the migrations once", async () => {
    const { url, sql } = await emptyDatabase();
    opened.push(sql);
    // Hold the lock so both runs are provably queued on it, then let them race for real.
    const holder = await sql.reserve();
    await holder`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`;
    const runs = Promise.allSettled([runMigrations(url, MIGRATIONS), runMigrations(url, MIGRATIONS)]);
    await eventually(async () => {
      const [w] = await sql<{ n: number }[]>`
        select count(*)::int as n from pg_locks l join pg_database d on d.oid = l.database
        where l.locktype = 'advisory' and not l.granted and d.datname = current_database()`;
      return w!.n === 2;
    });
    const [whileLocked] = await sql<{ n: number }[]>`select count(*)::int as n from information_schema.tables where table_schema = 'drizzle'`;
    expect(whileLocked!.n).toBe(0);
    await holder`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`;
    holder.release();

    const results = await runs;
    expect(results.map((r) => (r.status === "rejected" ? String(r.reason) : "ok"))).toEqual(["ok", "ok"]);
    expect((await migrationRows(sql)).length).toBe(journal.entries.length);
  });
});

describe("migration 0018 (the Postgres feature store, one row per user)", () => {
  it("carries every stored item over, with its value, time and expiry, into its user's row", async () => {
    const { url, sql } = await emptyDatabase();
    opened.push(sql);
    // The migrations up to 0017: a copy of the folder whose journal stops before 0018.
    const dir = mkdtempSync(join(tmpdir(), "migrations-"));
    try {
      cpSync(MIGRATIONS, dir, { recursive: true });
      const upTo = journal.entries.findIndex((e) => e.tag.startsWith("0018_"));
      expect(upTo).toBeGreaterThan(0);
      writeFileSync(join(dir, "meta", "_journal.json"), JSON.stringify({ ...journal, entries: journal.entries.slice(0, upTo) }));
      await runMigrations(url, dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    await sql`
      insert into analytics.user_features (user_id, feature_type, value, updated_at, expires_at) values
        ('u1', 'hour_preference', '{"preferredHour": 3}', '2026-12-01T10:00:00.123Z', '2026-12-31T10:00:00Z'),
        ('u1', 'session_depth', '{"sessions": 2, "averageEvents": 1.5}', '2026-12-01T10:00:00Z', '2026-12-31T10:00:00Z'),
        ('u2', 'session_depth', '{"sessions": 1, "averageEvents": null}', '2026-12-02T10:00:00Z', '2027-01-01T10:00:00Z')`;

    await runMigrations(url, MIGRATIONS);
    const rows = await sql<{ user_id: string; items: unknown }[]>`select user_id, items from analytics.user_features order by user_id`;
    expect([...rows]).toEqual([
      {
        user_id: "u1",
        items: {
          hour_preference: { value: { preferredHour: 3 }, updatedAt: "2026-12-01T10:00:00.123Z", ttl: 1798711200 },
          session_depth: { value: { sessions: 2, averageEvents: 1.5 }, updatedAt: "2026-12-01T10:00:00.000Z", ttl: 1798711200 },
        },
      },
      { user_id: "u2", items: { session_depth: { value: { sessions: 1, averageEvents: null }, updatedAt: "2026-12-02T10:00:00.000Z", ttl: 1798797600 } } },
    ]);
  });
});

describe("/ready", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ ROLES: "api" });
  });
  afterAll(async () => {
    await server?.close();
  });

  it("is 200 when every migration is applied and 503 naming migrations while one is pending", async () => {
    const ready = await server.request("/ready");
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: "ready" });

    // Forget the newest applied migration: to the probe the database now lags the journal by one.
    const [last] = await server.database.sql`
      delete from drizzle.__drizzle_migrations where id = (select max(id) from drizzle.__drizzle_migrations) returning id, hash, created_at`;
    try {
      const pending = await server.request("/ready");
      expect(pending.status).toBe(503);
      expect(await pending.json()).toEqual({ status: "unavailable", failed: ["migrations"] });
    } finally {
      await server.database.sql`insert into drizzle.__drizzle_migrations (id, hash, created_at) values (${last!.id}, ${last!.hash}, ${last!.created_at})`;
    }
    expect((await server.request("/ready")).status).toBe(200);
  });
});
