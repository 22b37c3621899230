import { afterAll, describe, expect, it } from "bun:test";
import { FAKE_CREDENTIALS, startEventBridge } from "../support/emulators.ts";
import { eventually } from "../support/eventually.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

const servers: TestServer[] = [];
afterAll(async () => {
  for (const s of servers) await s.close();
});
const start = async (env: Record<string, string>) => {
  const s = await startTestServer(env);
  servers.push(s);
  return s;
};

describe("ROLES", () => {
  it("a worker-only replica serves probes and metrics but no API, docs or OpenAPI", async () => {
    const s = await start({ ROLES: "worker" });
    expect((await s.request("/health")).status).toBe(200);
    expect((await s.request("/ready")).status).toBe(200);
    expect((await s.request("/metrics")).status).toBe(200);
    for (const path of ["/api/v1/users/me", "/openapi.json", "/docs"]) expect((await s.request(path)).status).toBe(404);
  });

  it("an API-only replica serves HTTP and runs no subscription workers", async () => {
    process.env.AWS_ACCESS_KEY_ID = FAKE_CREDENTIALS.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = FAKE_CREDENTIALS.secretAccessKey;
    const eb = startEventBridge();
    try {
      const api = await start({ ROLES: "api", EVENTBRIDGE_BUS_NAME: "bus", AWS_ENDPOINT_URL: eb.endpoint });
      await api.register();
      await Bun.sleep(500);
      // The sink is declared but nobody runs it: no checkpoint row, nothing sent.
      expect(eb.received).toHaveLength(0);
      const [row] = await api.database.sql`select count(*)::int as n from outbox.subscriptions`;
      expect(row!.n).toBe(0);

      // A worker replica on the same database picks the event up.
      const worker = await startTestServer({ ROLES: "worker", EVENTBRIDGE_BUS_NAME: "bus", AWS_ENDPOINT_URL: eb.endpoint, DATABASE_URL: api.tdb.url });
      try {
        await eventually(() => eb.received.some((e) => e.DetailType === "user.registered"));
      } finally {
        await worker.close();
      }
    } finally {
      await eb.stop();
    }
  });
});

describe("MODULES", () => {
  it("hosts only the named modules", async () => {
    const s = await start({ MODULES: "users" });
    expect(s.modules.map((m) => m.name)).toEqual(["users"]);
    expect((await s.request("/api/v1/users/me")).status).toBe(401);
  });

  it("refuses an unknown module name", async () => {
    await expect(startTestServer({ MODULES: "users,nonsense" })).rejects.toThrow(/unknown modules: nonsense/);
  });
});
