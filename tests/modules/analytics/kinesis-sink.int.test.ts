import { afterAll, beforeAll, beforeEach, describe, expect, it } from "bun:test";
import { randomUUIDv7 } from "bun";
import { createKinesisClient } from "../../../outbox/sinks/index.ts";
import { type GenEvent, mulberry32 } from "../../support/clickstream.ts";
import { createStream, FAKE_CREDENTIALS, type KinesisEmulator, readStream, startKinesis } from "../../support/emulators.ts";
import { eventually } from "../../support/eventually.ts";
import { startTestServer, type TestServer } from "../../support/server.ts";

// The clickstream's Kinesis sink as the server runs it (ANALYTICS_KINESIS_STREAM, the real AWS SDK
// client) against kinesalite behind a front that records every PutRecords call and fails chosen
// records or whole calls on demand.
const KEY = "test-ingest-key-0123456789";
const STREAM = "clickstream-test";
let kin: KinesisEmulator;
let s: TestServer;
const client = () => createKinesisClient("us-east-1", kin.endpoint, FAKE_CREDENTIALS);

beforeAll(async () => {
  process.env.AWS_ACCESS_KEY_ID = FAKE_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = FAKE_CREDENTIALS.secretAccessKey;
  kin = await startKinesis();
  await createStream(client(), STREAM, 3);
  s = await startTestServer({ ANALYTICS_INGEST_KEY: KEY, ANALYTICS_KINESIS_STREAM: STREAM, AWS_ENDPOINT_URL_KINESIS: kin.endpoint, WORKER_POLL_MS: "50" });
});
afterAll(async () => {
  await s?.close();
  await kin?.stop();
});
beforeEach(() => kin.reset());

let seq = 0;
/** events makes `n` events of a few users, every one with its own id, price and device. */
function events(n: number, tag: string): (GenEvent & { eventId: string })[] {
  const rnd = mulberry32(++seq);
  const users = Array.from({ length: 7 }, (_, i) => `${tag}-user-${i}`);
  return Array.from({ length: n }, (_, i) => ({
    eventId: randomUUIDv7(),
    userId: users[Math.floor(rnd() * users.length)]!,
    sessionId: `${tag}-s-${i % 5}`,
    eventType: (["page_view", "add_to_cart", "purchase"] as const)[i % 3]!,
    productId: `p-${i % 11}`,
    category: "books",
    price: Math.floor(rnd() * 10_000) / 100,
    quantity: 1 + (i % 3),
    deviceType: i % 2 ? "mobile" : "desktop",
    location: { country: "FR", region: "IDF" },
    clientTime: new Date(Date.now() - (n - i) * 1000).toISOString(),
  }));
}

async function ingest(batch: GenEvent[]): Promise<void> {
  const res = await s.request("/api/v1/analytics/events", { method: "POST", json: { events: batch }, headers: { "x-api-key": KEY } });
  expect(res.status).toBe(202);
  expect(((await res.json()) as { rejected: unknown[] }).rejected).toEqual([]);
}

type Record = { partitionKey: string; data: { [k: string]: unknown; eventId: string; userId: string } };
/** arrived waits until the stream holds a record of every id in `ids`, and returns those records. */
async function arrived(ids: string[], timeoutMs = 20_000): Promise<Record[]> {
  const want = new Set(ids);
  return eventually(
    async () => {
      const records = (await readStream(client(), STREAM)).map((r) => ({ partitionKey: r.partitionKey, data: JSON.parse(r.data) as Record["data"] }));
      const mine = records.filter((r) => want.has(r.data.eventId));
      return new Set(mine.map((r) => r.data.eventId)).size === want.size ? mine : false;
    },
    timeoutMs,
    100,
  );
}

describe("the clickstream Kinesis sink", () => {
  it("sends every accepted event once, keyed by its userId, with the enriched record as data, in calls of at most 500", async () => {
    const sent = events(1200, "all");
    for (let i = 0; i < sent.length; i += 500) await ingest(sent.slice(i, i + 500));
    // Repeated ids are accepted but were stored before: they are not sent again.
    await ingest(sent.slice(0, 20));
    const got = await arrived(sent.map((e) => e.eventId));
    expect(got.length).toBe(sent.length);
    for (const r of got) expect(r.partitionKey).toBe(r.data.userId);
    const byId = new Map(got.map((r) => [r.data.eventId, r.data]));
    for (const e of sent) {
      expect(byId.get(e.eventId)).toMatchObject({
        eventId: e.eventId,
        userId: e.userId,
        sessionId: e.sessionId,
        eventType: e.eventType,
        productId: e.productId,
        category: e.category,
        priceCents: Math.round(e.price! * 100),
        quantity: e.quantity,
        deviceType: e.deviceType,
        location: e.location,
        eventTime: e.clientTime,
        clientTime: e.clientTime,
        version: "1.0",
        source: "analytics-api",
        features: { deviceCategory: e.deviceType === "mobile" ? "MOBILE" : "DESKTOP" },
      });
    }
    expect(new Set(got.map((r) => r.partitionKey)).size).toBe(7);
    const calls = kin.calls.filter((c) => c.outcome === "ok");
    expect(Math.max(...calls.map((c) => c.entries.length))).toBeLessThanOrEqual(500);
    expect(calls.reduce((n, c) => n + c.entries.length, 0)).toBe(sent.length);
  });

  it("resends only the records Kinesis failed, and loses nothing through throttling and an outage", async () => {
    const sent = events(300, "faults");
    // The first call fails three records; the next two calls are throttled whole.
    kin.failRecords({ code: "ProvisionedThroughputExceededException", indices: [0, 7, 299] });
    await ingest(sent);
    await arrived(sent.map((e) => e.eventId));
    const first = kin.calls.find((c) => c.entries.length === 300)!;
    expect(first.failed).toEqual([0, 7, 299]);
    const retried = kin.calls.filter((c) => c.outcome === "ok" && c !== first);
    expect(retried.map((c) => c.entries.length)).toEqual([3]);
    expect(retried[0]!.entries.map((e) => JSON.parse(e.data).eventId)).toEqual([sent[0]!.eventId, sent[7]!.eventId, sent[299]!.eventId]);

    kin.reset();
    kin.throttleCalls(2);
    kin.outage("server-error");
    const more = events(50, "outage");
    await ingest(more);
    await eventually(() => kin.calls.length >= 3, 10_000);
    kin.outage(null);
    const got = await arrived(more.map((e) => e.eventId));
    expect(got.length).toBe(more.length);
    expect((await s.database.sql`select 1 from outbox.dead_letters where subscription = 'analytics.kinesis'`).length).toBe(0);
  });
});
