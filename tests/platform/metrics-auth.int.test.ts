import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { expectProblem } from "../support/http.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

// /metrics with METRICS_TOKEN set: only a scraper sending that bearer token reads it.
const TOKEN = "scrape-token-0123456789abcdef";

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ ROLES: "api", METRICS_TOKEN: TOKEN });
});
afterAll(() => s.close());

describe("/metrics behind METRICS_TOKEN", () => {
  it("answers the scraper that sends the token", async () => {
    const res = await s.request("/metrics", { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("# TYPE");
    // The scheme is case-insensitive (RFC 9110).
    expect((await s.request("/metrics", { headers: { authorization: `bearer ${TOKEN}` } })).status).toBe(200);
  });

  it("refuses no token, a wrong one, a prefix of it, another scheme and a user's JWT with a 401 problem", async () => {
    const user = await s.register();
    for (const authorization of [
      undefined,
      `Bearer ${TOKEN}x`,
      `Bearer ${TOKEN.slice(0, -1)}`,
      `Basic ${btoa(`x:${TOKEN}`)}`,
      `Bearer ${user.token}`,
      "Bearer",
    ]) {
      const res = await s.request("/metrics", { headers: authorization ? { authorization } : {} });
      expect(res.headers.get("www-authenticate")).toBe('Bearer realm="metrics"');
      await expectProblem(res, 401, "AUTH.METRICS_TOKEN");
    }
  });

  it("leaves /health and /ready open for probes", async () => {
    expect((await s.request("/health")).status).toBe(200);
    expect((await s.request("/ready")).status).toBe(200);
  });
});
