import { describe, it } from "bun:test";
import pino from "pino";
import { createHttpApp } from "../../src/http/app.ts";
import { createMemoryRateLimiter } from "../../src/http/rate-limit.ts";
import { defineRoute } from "../../src/http/route.ts";
const dump = async (label: string, r: Response) => console.log(label, r.status, JSON.stringify(Object.fromEntries(r.headers)), await r.text());

describe("probe", () => {
  it("probes", async () => {
    const app = createHttpApp({
      log: pino({ level: "silent" }),
      verifyToken: async () => { throw new Error("no"); },
      rateLimiter: createMemoryRateLimiter({ max: 2, windowSeconds: 60 }),
      idempotencyStore: { begin: async () => ({ state: "new" }), complete: async () => { throw new Error("db down secret"); }, abandon: async () => {} },
      bodyLimitBytes: 1000, corsOrigins: [], servesApi: true, readiness: async () => [],
    }, (api) => {
      api.openapi(defineRoute({ access: "public", idempotent: true }, { method: "post", path: "/things", responses: { 201: { description: "x" } } }), (c) => { c.header("location", "/x"); return c.json({ ok: true }, 201) as never; });
    });
    await dump("500", await app.request("/api/v1/things", { method: "POST", headers: { "idempotency-key": "k", "content-type": "application/json" }, body: "{}" }));
    await dump("ip", await app.fetch(new Request("http://x/api/v1/things", { method: "POST" }), { requestIP: () => ({ address: "1.2.3.4" }) }));
  });
});
