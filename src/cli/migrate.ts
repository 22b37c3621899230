import { loadConfig } from "../config.ts";
import { startEmbeddedPostgres } from "../db/embedded.ts";
import { runMigrations } from "../db/migrate.ts";

// `bun run db:migrate`: apply pending migrations to DATABASE_URL (or the embedded database).
const config = loadConfig();
const embedded = config.DATABASE_URL ? undefined : await startEmbeddedPostgres(config.EMBEDDED_PG_DIR, config.EMBEDDED_PG_PORT, console.log);
await runMigrations(config.DATABASE_URL ?? embedded!.url, config.MIGRATIONS_DIR);
console.log("migrations applied");
await embedded?.stop();
