import { defineConfig } from "drizzle-kit";

/** Generates SQL migrations from every module's schema and the outbox schema. */
export default defineConfig({
  dialect: "postgresql",
  schema: ["./outbox/schema.ts", "./modules/*/schema.ts"],
  out: "./migrations",
  schemaFilter: ["outbox", "users", "posts", "timelines", "search", "notifications", "orders", "inventory", "payments", "analytics"],
  dbCredentials: { url: process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres" },
});
