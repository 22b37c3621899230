import { loadConfig } from "../config.ts";
import { startEmbeddedPostgres } from "../db/embedded.ts";
import { runMigrations } from "../db/migrate.ts";

// `bun run db:migrate`: apply pending migrations to DATABASE_URL (or the embedded database).
// The embedded Postgres runs in its own process group, so Ctrl-C reaches only this process; a
// signal ends it through process.exit, whose exit hook stops Postgres too.
process.on("SIGINT", () => process.exit(130));
process.on("SIGTERM", () => process.exit(143));
try {
  const config = loadConfig();
  const embedded = config.DATABASE_URL ? undefined : await startEmbeddedPostgres(config.EMBEDDED_PG_DIR, config.EMBEDDED_PG_PORT, console.log);
  await runMigrations(config.DATABASE_URL ?? embedded!.url, config.MIGRATIONS_DIR);
  console.log("migrations applied");
  await embedded?.stop();
} catch (err) {
  console.error(`db:migrate failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
