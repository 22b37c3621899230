import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { randomUUIDv7 } from "bun";
import { AnalyticsEventsIngested } from "../../../modules/analytics/events.ts";
import { storeEvents } from "../../../modules/analytics/ingest.ts";
import { createPartitions, dropPartitions, PARTITION_DAYS_AHEAD, partitionMaintenance } from "../../../modules/analytics/partitions.ts";
import type { ClickEvent } from "../../../modules/analytics/validate.ts";
import { eventually } from "../../support/eventually.ts";
import { startTestServer, type TestServer } from "../../support/server.ts";

let s: TestServer;
beforeAll(async () => {
  // Workers off: the maintenance task is started by hand, with a clock of its own.
  s = await startTestServer({ ROLES: "api" });
});
afterAll(() => s.close());

const deps = () => ({
  db: s.database.db,
  outbox: s.outbox.appender,
  catalog: { lookup: async () => new Map() },
  profiles: { lookup: async () => new Map() },
});
const ev = (over: Partial<ClickEvent> = {}): ClickEvent => ({ userId: "part-user", sessionId: "s", eventType: "page_view", ...over });
const partitions = async () =>
  (
    await s.database.sql<{ name: string }[]>`
      select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid
      where i.inhparent = 'analytics.clickstream'::regclass order by 1`
  ).map((r) => r.name);
const rowsOf = async (eventId: string) =>
  s.database.sql<{ partition: string; event_time: Date }[]>`
    select tableoid::regclass::text as partition, event_time from analytics.clickstream where event_id = ${eventId}`;

describe("the day-partitioned clickstream", () => {
  it("stores a row in its receive day's partition, making the partition when none is there yet", async () => {
    const id = randomUUIDv7();
    expect(await partitions()).not.toContain("clickstream_20310101");
    expect(await storeEvents(deps(), [ev({ eventId: id })], new Date("2031-01-01T23:59:59.999Z"))).toBe(1);
    expect((await rowsOf(id)).map((r) => r.partition)).toEqual(["analytics.clickstream_20310101"]);
    expect(await partitions()).toContain("clickstream_20310101");
  });

  it("counts an eventId once when it comes again on another day with another clientTime", async () => {
    const id = randomUUIDv7();
    expect(await storeEvents(deps(), [ev({ eventId: id, clientTime: "2031-02-01T10:00:00Z" })], new Date("2031-02-01T10:00:01Z"))).toBe(1);
    expect(await storeEvents(deps(), [ev({ eventId: id, clientTime: "2031-02-02T08:00:00Z" })], new Date("2031-02-02T08:00:01Z"))).toBe(0);
    expect(await storeEvents(deps(), [ev({ eventId: id }), ev({ eventId: id, clientTime: "2031-02-03T00:00:00Z" })], new Date("2031-02-03T00:00:01Z"))).toBe(0);
    const rows = await rowsOf(id);
    expect(rows.map((r) => [r.partition, new Date(r.event_time).toISOString()])).toEqual([["analytics.clickstream_20310201", "2031-02-01T10:00:00.000Z"]]);
    const [ingested] = await s.database.sql<{ n: number }[]>`
      select count(*)::int as n from outbox.events where type = 'analytics.events_ingested' and data->>'receivedAt' like '2031-02-0%'`;
    expect(ingested!.n).toBe(1);
  });

  it("drops whole days past the retention with their ids, after which an id is stored again", async () => {
    const old = randomUUIDv7();
    const kept = randomUUIDv7();
    await storeEvents(deps(), [ev({ eventId: old })], new Date("2031-03-01T12:00:00Z"));
    await storeEvents(deps(), [ev({ eventId: kept })], new Date("2031-03-02T12:00:00Z"));
    // The consumers' records of applied batches go with their day.
    const [oldBatch, keptBatch] = [randomUUIDv7(), randomUUIDv7()];
    await s.database.sql`
      insert into analytics.consumer_batches (consumer, batch_id, received_at)
      values ('analytics.aggregate', ${oldBatch}, '2031-03-01T12:00:00Z'), ('analytics.aggregate', ${keptBatch}, '2031-03-02T12:00:00Z')`;
    const dropped = await dropPartitions(s.database.db, new Date("2031-03-02T06:00:00Z"));
    const batches = await s.database.sql<{ batch_id: string }[]>`select batch_id from analytics.consumer_batches where batch_id in (${oldBatch}, ${keptBatch})`;
    expect(batches.map((r) => r.batch_id)).toEqual([keptBatch]);
    // Every day before 2031-03-02 goes: those the earlier tests made, and the ones the migration made.
    expect(dropped).toBeGreaterThanOrEqual(4);
    expect((await partitions()).filter((p) => p < "clickstream_20310302")).toEqual([]);
    expect(await partitions()).toContain("clickstream_20310302");
    const ids = await s.database.sql<{ event_id: string }[]>`select event_id from analytics.clickstream_ids where event_id in (${old}, ${kept})`;
    expect(ids.map((r) => r.event_id)).toEqual([kept]);
    expect(await storeEvents(deps(), [ev({ eventId: old })], new Date("2031-03-02T13:00:00Z"))).toBe(1);
    expect(await storeEvents(deps(), [ev({ eventId: kept })], new Date("2031-03-02T13:00:00Z"))).toBe(0);
  });

  it("keeps yesterday to a week ahead made, and drops the days past the retention, in the background", async () => {
    const now = new Date("2032-06-10T15:00:00Z");
    await createPartitions(s.database.db, new Date("2032-06-01T00:00:00Z"), 3);
    const task = partitionMaintenance({ db: s.database.db, retentionDays: 8, clock: () => now });
    task.start();
    await task.stop();
    const made = (await partitions()).filter((p) => p.startsWith("clickstream_2032"));
    const expected = Array.from(
      { length: PARTITION_DAYS_AHEAD + 2 },
      (_, i) => `clickstream_${new Date(Date.UTC(2032, 5, 9 + i)).toISOString().slice(0, 10).replaceAll("-", "")}`,
    );
    // 2032-06-01 is older than 8 days (before 2032-06-02) and goes; 06-02 and 06-03 stay.
    expect(made).toEqual(["clickstream_20320602", "clickstream_20320603", ...expected]);
    expect(await createPartitions(s.database.db, new Date("2032-06-09T00:00:00Z"), PARTITION_DAYS_AHEAD + 2)).toBe(0);
  });
});

describe("the consumers over partitions", () => {
  let w: TestServer;
  beforeAll(async () => {
    w = await startTestServer();
  });
  afterAll(() => w.close());

  it("apply a batch announced without receivedAt (before it existed) by looking in every partition, and one with it in its own", async () => {
    const hour = Math.floor(Date.now() / 3600_000) * 3600_000 - 3600_000;
    const batches = [
      { batchId: randomUUIDv7(), receivedAt: new Date(hour).toISOString(), announce: false, category: "old-announcement" },
      { batchId: randomUUIDv7(), receivedAt: new Date(hour + 1000).toISOString(), announce: true, category: "new-announcement" },
    ];
    for (const b of batches) {
      await createPartitions(w.database.db, new Date(b.receivedAt), 1);
      await w.database.sql`
        insert into analytics.clickstream (event_id, batch_id, batch_index, user_id, session_id, event_type, category, price_cents, quantity,
          event_time, received_at, version, source, features)
        select gen_random_uuid(), ${b.batchId}::uuid, i, 'part-consumer', 's', 'purchase', ${b.category}, 250, 2,
          ${b.receivedAt}::timestamptz, ${b.receivedAt}::timestamptz, '1.0', 'test', '{}'::jsonb
        from generate_series(0, 2) i`;
      await w.database.db.transaction((tx) =>
        w.outbox.appender.append(tx, [
          AnalyticsEventsIngested.with({ batchId: b.batchId, count: 3, ...(b.announce ? { receivedAt: b.receivedAt } : {}) }, { subject: b.batchId }),
        ]),
      );
    }
    await eventually(async () => {
      const revenue = await w.database.sql<{ category: string; order_count: number; revenue_cents: string }[]>`
        select category, order_count, revenue_cents from analytics.revenue_windows where category like '%-announcement' order by category`;
      expect(revenue.map((r) => [r.category, r.order_count, Number(r.revenue_cents)])).toEqual([
        ["new-announcement", 3, 1500],
        ["old-announcement", 3, 1500],
      ]);
      const [sessions] = await w.database.sql<{ events: number }[]>`
        select coalesce(sum(event_count), 0)::int as events from analytics.sessions where user_id = 'part-consumer'`;
      expect(sessions!.events).toBe(6);
    }, 15_000);
  });

  it("lets the feature refresh pass a batch whose rows and record retention dropped, when it is replayed", async () => {
    const now = new Date().toISOString();
    const gone = randomUUIDv7();
    const real = randomUUIDv7();
    await createPartitions(w.database.db, new Date(now), 1);
    await w.database.sql`
      insert into analytics.clickstream (event_id, batch_id, batch_index, user_id, session_id, event_type, event_time, received_at, version, source, features)
      values (gen_random_uuid(), ${real}::uuid, 0, 'after-gone', 's', 'page_view', ${now}::timestamptz, ${now}::timestamptz, '1.0', 'test', '{}'::jsonb)`;
    // The first announced batch has no rows: as if retention had dropped its day.
    await w.database.db.transaction((tx) =>
      w.outbox.appender.append(tx, [
        AnalyticsEventsIngested.with({ batchId: gone, count: 1, receivedAt: now }, { subject: gone }),
        AnalyticsEventsIngested.with({ batchId: real, count: 1, receivedAt: now }, { subject: real }),
      ]),
    );
    const featuresOf = async () =>
      (await w.database.sql<{ n: number }[]>`select count(*)::int as n from analytics.user_features where user_id = 'after-gone'`)[0]!.n;
    await eventually(async () => expect(await featuresOf()).toBeGreaterThan(0), 15_000);
    // Retention drops the gone batch's record too; the features are written again by a replay.
    await w.database.sql`delete from analytics.consumer_batches where batch_id = ${gone}::uuid`;
    await w.database.sql`delete from analytics.user_features where user_id = 'after-gone'`;
    const admin = await w.adminToken();
    const res = await w.request("/api/v1/admin/subscriptions/analytics.features/replay", { method: "POST", json: { from: 0 }, token: admin });
    expect(res.status).toBeLessThan(300);
    await eventually(async () => expect(await featuresOf()).toBeGreaterThan(0), 15_000);
  }, 40_000);
});
