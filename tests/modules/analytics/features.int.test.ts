import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { createDynamoClient, createFeatureTable } from "../../../modules/analytics/index.ts";
import { type DynamoEmulator, startDynalite } from "../../support/dynalite.ts";
import { FAKE_CREDENTIALS } from "../../support/emulators.ts";
import { eventually } from "../../support/eventually.ts";
import { type FaultProxy, startFaultProxy } from "../../support/fault-proxy.ts";
import { expectedFeatures, featureClickstream } from "../../support/features.ts";
import { expectProblem } from "../../support/http.ts";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { caughtUp, type QuickUser, quickUsers } from "../../support/social.ts";

// The feature store end to end, once per backend: a seeded clickstream over 35 days goes in
// through HTTP, the sessions consumer counts it (twice failing a delivery after counting, as a
// crash would), the feature subscription writes the store, and the route's answers must equal a
// plain reference computation over the same events.
const KEY = "test-ingest-key-0123456789";
let dynamo: DynamoEmulator;
// The server reaches dynalite through a proxy that can refuse connections (a DynamoDB outage).
let proxy: FaultProxy;
beforeAll(async () => {
  process.env.AWS_ACCESS_KEY_ID = FAKE_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = FAKE_CREDENTIALS.secretAccessKey;
  dynamo = await startDynalite();
  proxy = startFaultProxy(Number(new URL(dynamo.endpoint).port));
});
afterAll(async () => {
  proxy?.stop();
  await dynamo?.stop();
});

type Features = { userId: string; updatedAt: string | null; features: Record<string, unknown> };

describe.each(["postgres", "dynamodb"] as const)("user features kept in %s", (backend) => {
  let s: TestServer;
  let admin: string;
  let users: QuickUser[];
  let stranger: QuickUser;
  let events: ReturnType<typeof featureClickstream>;
  /** settled waits until the consumer and then the feature subscription have handled everything ingested so far. */
  const settled = async () => {
    await caughtUp(s, "analytics.sessions", ["analytics.events_ingested"], 30_000);
    await caughtUp(s, "analytics.features", ["analytics.events_ingested"], 30_000);
  };
  const features = (id: string, token?: string) => s.request(`/api/v1/analytics/users/${encodeURIComponent(id)}/features`, { token });

  beforeAll(async () => {
    const env: Record<string, string> = { ANALYTICS_INGEST_KEY: KEY, WORKER_POLL_MS: "50" };
    if (backend === "dynamodb") {
      const tableName = `features-${Date.now().toString(36)}`;
      await createFeatureTable(createDynamoClient("us-east-1", dynamo.endpoint, FAKE_CREDENTIALS), tableName);
      Object.assign(env, { FEATURE_STORE_TABLE: tableName, AWS_ENDPOINT_URL_DYNAMODB: `http://127.0.0.1:${proxy.port}` });
    }
    s = await startTestServer(env);
    admin = await s.adminToken();
    const made = await quickUsers(s, 4, "feat");
    stranger = made[0]!;
    users = made.slice(1);
  });
  afterAll(() => s?.close());

  it("computes every feature exactly, once per event, through failed deliveries and repeated ids", async () => {
    // The first two deliveries fail after the counters were added (at their last write, the
    // watermark), are rolled back whole and delivered again: nothing may be counted twice. A
    // sequence counts the tries, since it is not rolled back with them.
    await s.database.sql.unsafe(`
      create sequence public.delivery_tries;
      create function public.fail_delivery() returns trigger language plpgsql as $$
      begin
        if nextval('public.delivery_tries') <= 2 then raise exception 'injected failure after counting'; end if;
        return new;
      end $$;
      create trigger fail_delivery before insert on analytics.consumer_state for each row execute function public.fail_delivery();`);
    const now = Date.now();
    events = featureClickstream(
      7,
      users.map((u) => u.id),
      now,
    );
    expect(events.length).toBeGreaterThan(60);
    const repeated = events.filter((_, i) => i % 9 === 0);
    for (let i = 0; i < events.length; i += 40) {
      const batch = events.slice(i, i + 40);
      // Ids sent before come again in a later request: stored, and counted, once.
      const again = i > 0 ? repeated.filter((e) => events.indexOf(e) < i).slice(-3) : [];
      const res = await s.request("/api/v1/analytics/events", { method: "POST", json: { events: [...batch, ...again] }, headers: { "x-api-key": KEY } });
      expect(res.status).toBe(202);
      expect(((await res.json()) as { rejected: unknown[] }).rejected).toEqual([]);
    }
    await settled();
    for (const u of users) {
      const res = await features(u.id, admin);
      expect(res.status).toBe(200);
      expect(((await res.json()) as Features).features).toEqual(expectedFeatures(events, u.id, now));
    }
    const [tries] = await s.database.sql<{ n: string }[]>`select last_value::text as n from public.delivery_tries`;
    expect(Number(tries!.n)).toBeGreaterThan(2);
    expect((await s.database.sql`select 1 from outbox.dead_letters`).length).toBe(0);
  });

  it("answers the user themself and admins, with the same features; anyone else gets 404 and the anonymous 401", async () => {
    const [owner] = users;
    const mine = await features(owner!.id, owner!.token);
    expect(mine.status).toBe(200);
    const body = (await mine.json()) as Features;
    expect(body.userId).toBe(owner!.id);
    expect(Object.keys(body.features).sort()).toEqual([
      "average_order_value",
      "category_preferences",
      "device_preference",
      "hour_preference",
      "price_sensitivity",
      "purchase_frequency",
      "session_depth",
    ]);
    expect(Date.parse(body.updatedAt!)).toBeGreaterThan(Date.now() - 60_000);
    expect(await (await features(owner!.id, admin)).json()).toEqual(body);
    await expectProblem(await features(owner!.id, stranger.token), 404, "ANALYTICS.FEATURES_NOT_FOUND");
    await expectProblem(await features(owner!.id, users[1]!.token), 404, "ANALYTICS.FEATURES_NOT_FOUND");
    expect((await features(owner!.id)).status).toBe(401);
    // Nothing ingested: an empty answer for oneself, not an error.
    expect(await (await features(stranger.id, stranger.token)).json()).toEqual({ userId: stranger.id, updatedAt: null, features: {} });
    await expectProblem(await features("x".repeat(129), admin), 400, "VALIDATION.FAILED");
  });

  it("writes the same features again when the feature subscription is replayed from the start", async () => {
    const read = () => Promise.all(users.map(async (u) => (await (await features(u.id, admin)).json()) as Features));
    const before = await read();
    const res = await s.request("/api/v1/admin/subscriptions/analytics.features/replay", { method: "POST", json: { from: 0 }, token: admin });
    expect(res.status).toBeLessThan(300);
    // The checkpoint is back at the start once the admin API answers: settled waits for the rewrite.
    await settled();
    const after = await read();
    // Written again (later), with the same values.
    for (const [i, a] of after.entries()) expect(Date.parse(a.updatedAt!)).toBeGreaterThan(Date.parse(before[i]!.updatedAt!));
    expect(after.map((a) => a.features)).toEqual(before.map((b) => b.features));
    expect(after.map((a) => a.features.average_order_value)).toEqual(users.map((u) => expectedFeatures(events, u.id, Date.now()).average_order_value));
  });

  it.if(backend === "dynamodb")("holds the features back through a DynamoDB outage, dead-letters nothing, and catches up after it", async () => {
    const [u] = users;
    const before = (await (await features(u!.id, admin)).json()) as Features;
    proxy.set("refuse");
    try {
      const buy = {
        eventId: crypto.randomUUID(),
        userId: u!.id,
        sessionId: "outage",
        eventType: "purchase" as const,
        price: 42,
        category: "books",
        clientTime: new Date(Date.now() - 60_000).toISOString(),
      };
      events.push(buy);
      // Readers are told to come back (503 with retry-after), not given a 500.
      const down = await features(u!.id, admin);
      await expectProblem(down, 503, "ANALYTICS.FEATURE_STORE_UNAVAILABLE");
      expect(down.headers.get("retry-after")).toBe("5");
      const res = await s.request("/api/v1/analytics/events", { method: "POST", json: buy, headers: { "x-api-key": KEY } });
      expect(res.status).toBe(202);
      await caughtUp(s, "analytics.sessions", ["analytics.events_ingested"], 30_000);
      // The write fails and is deferred (recorded as the subscription's last error), counting no attempt.
      await eventually(async () => {
        const [sub] = await s.database.sql<{ last_error: string | null; failing_attempts: number }[]>`
          select last_error, failing_attempts from outbox.subscriptions where name = 'analytics.features'`;
        return sub!.last_error?.includes("feature store (dynamodb) write failed") && sub!.failing_attempts === 0;
      }, 20_000);
    } finally {
      proxy.set("pass");
    }
    await settled();
    const after = (await (await features(u!.id, admin)).json()) as Features;
    expect(after.features).toEqual(expectedFeatures(events, u!.id, Date.now()));
    expect(after.features).not.toEqual(before.features);
    expect((await s.database.sql`select 1 from outbox.dead_letters`).length).toBe(0);
  });
});
