/**
 * Reference server for bench/http.ts: bare Hono on Bun.serve answering `/health` as the app does,
 * with no middleware. Listens on 127.0.0.1:$PORT.
 */
import { Hono } from "hono";

const app = new Hono();
app.get("/health", (c) => c.json({ status: "ok" }));

Bun.serve({ hostname: "127.0.0.1", port: Number(process.env.PORT), fetch: app.fetch });
