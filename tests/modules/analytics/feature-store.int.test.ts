import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { randomUUIDv7 } from "bun";
import {
  createDynamoClient,
  createDynamoFeatureStore,
  createFeatureTable,
  createPostgresFeatureStore,
  type FeatureItem,
  type FeatureStore,
  type FeatureType,
} from "../../../modules/analytics/index.ts";
import { connectDatabase, type Database } from "../../../src/db/client.ts";
import { createTestDatabase, type TestDatabase } from "../../support/db.ts";
import { type DynamoEmulator, startDynalite } from "../../support/dynalite.ts";
import { FAKE_CREDENTIALS } from "../../support/emulators.ts";

// One suite, two stores: the Postgres table and a DynamoDB table served by dynalite through the
// real AWS SDK client (lib-dynamodb). Both get the same clock, which the tests move.
let now = new Date("2026-12-01T12:00:00.000Z");
const clock = () => now;
const DAY_S = 86_400;
const epoch = () => Math.floor(now.getTime() / 1000);

let tdb: TestDatabase;
let database: Database;
let dynamo: DynamoEmulator;
const stores: Record<"postgres" | "dynamodb", FeatureStore> = {} as never;

beforeAll(async () => {
  tdb = await createTestDatabase();
  database = connectDatabase(tdb.url, { max: 2 });
  stores.postgres = createPostgresFeatureStore(database.db, clock);
  dynamo = await startDynalite();
  const client = createDynamoClient("us-east-1", dynamo.endpoint, FAKE_CREDENTIALS);
  const tableName = "user-features-test";
  // dynalite has no Time to Live API: the table is made without it, and reads filter on `ttl`.
  await createFeatureTable(client, tableName);
  stores.dynamodb = createDynamoFeatureStore({ client, tableName, clock });
});
afterAll(async () => {
  await database?.close(2);
  await tdb?.drop();
  await dynamo?.stop();
});

const item = <K extends FeatureType>(userId: string, featureType: K, value: FeatureItem<K>["value"], ttl = epoch() + 30 * DAY_S): FeatureItem =>
  ({ userId, featureType, value, updatedAt: now.toISOString(), ttl }) as FeatureItem;
const aov = (purchases: number, revenueCents: number) => ({
  purchases,
  revenueCents,
  averageOrderValueCents: purchases ? Math.round(revenueCents / purchases) : null,
});
const hours = (h: number) => ({ preferredHour: h, hours: Array.from({ length: 24 }, (_, i) => (i === h ? 3 : i % 2)) });

describe.each(["postgres", "dynamodb"] as const)("the %s feature store", (kind) => {
  const store = () => stores[kind];

  it("says which backend it is", () => {
    expect(store().kind).toBe(kind);
  });

  it("gives back exactly the items put, nested values, nulls and fractions included, sorted by feature type", async () => {
    const user = `u-${randomUUIDv7()}`;
    const items = [
      item(user, "session_depth", { sessions: 3, averageEvents: 4.67, averagePageViews: null }),
      item(user, "average_order_value", aov(0, 0)),
      item(user, "hour_preference", hours(13)),
      item(user, "category_preferences", {
        categories: [
          { category: "books", views: 4, cartAdditions: 1, purchases: 1, score: 12, share: 0.6667 },
          { category: "toys & games", views: 6, cartAdditions: 0, purchases: 0, score: 6, share: 0.3333 },
        ],
      }),
    ];
    await store().put(items);
    const got = await store().get(user);
    expect(got).toEqual([...items].sort((a, b) => (a.featureType < b.featureType ? -1 : 1)));
  });

  it("overwrites an item written again (absolute values): the last write wins, no duplicates", async () => {
    const user = `u-${randomUUIDv7()}`;
    await store().put([item(user, "average_order_value", aov(1, 500))]);
    await store().put([item(user, "average_order_value", aov(2, 1500)), item(user, "average_order_value", aov(2, 1500))]);
    const got = await store().get(user);
    expect(got.map((i) => i.value)).toEqual([aov(2, 1500)]);
  });

  it("keeps users apart", async () => {
    const [a, b] = [`a-${randomUUIDv7()}`, `b-${randomUUIDv7()}`];
    await store().put([item(a, "average_order_value", aov(1, 100)), item(b, "average_order_value", aov(3, 900))]);
    expect((await store().get(a)).map((i) => [i.userId, i.value])).toEqual([[a, aov(1, 100)]]);
    expect((await store().get(b)).map((i) => [i.userId, i.value])).toEqual([[b, aov(3, 900)]]);
    expect(await store().get(`nobody-${randomUUIDv7()}`)).toEqual([]);
  });

  it("never returns an item past its ttl, though the backend may still hold it", async () => {
    const user = `u-${randomUUIDv7()}`;
    await store().put([
      item(user, "average_order_value", aov(1, 100), epoch() - 1),
      item(user, "purchase_frequency", { purchases: 1, purchaseDays: 1, purchasesPerWeek: 0.23 }, epoch() + 60),
    ]);
    expect((await store().get(user)).map((i) => i.featureType)).toEqual(["purchase_frequency"]);
    const saved = now;
    try {
      now = new Date(saved.getTime() + 61_000);
      expect(await store().get(user)).toEqual([]);
    } finally {
      now = saved;
    }
    expect((await store().get(user)).map((i) => i.featureType)).toEqual(["purchase_frequency"]);
  });

  it("keeps each item's own time and expiry when the items of one put differ in them, interleaved", async () => {
    const user = `u-${randomUUIDv7()}`;
    const at = (ms: number, i: FeatureItem): FeatureItem => ({ ...i, updatedAt: new Date(now.getTime() - ms).toISOString() });
    const items = [
      at(0, item(user, "average_order_value", aov(1, 100), epoch() + 100)),
      at(5_000, item(user, "hour_preference", hours(2), epoch() + 200)),
      at(0, item(user, "purchase_frequency", { purchases: 1, purchaseDays: 1, purchasesPerWeek: 0.23 }, epoch() + 100)),
      at(0, item(user, "session_depth", { sessions: 1, averageEvents: 2, averagePageViews: 1 }, epoch() + 300)),
    ];
    await store().put(items);
    expect(await store().get(user)).toEqual([...items].sort((a, b) => (a.featureType < b.featureType ? -1 : 1)));
  });

  it("writes more items than one call takes (BatchWriteItem: 25) and reads every one back", async () => {
    const users = Array.from({ length: 40 }, (_, i) => `many-${i}-${randomUUIDv7()}`);
    const items = users.flatMap((u, i) => [
      item(u, "average_order_value", aov(i, i * 250)),
      item(u, "hour_preference", hours(i % 24)),
      item(u, "device_preference", { preferred: "TABLET", events: { MOBILE: i, TABLET: i + 1, DESKTOP: 0 } }),
    ]);
    await store().put(items);
    for (const [i, u] of users.entries()) {
      const got = await store().get(u);
      expect(got.map((x) => x.featureType)).toEqual(["average_order_value", "device_preference", "hour_preference"]);
      expect(got[0]!.value).toEqual(aov(i, i * 250));
    }
  });

  it("takes an empty put", async () => {
    await store().put([]);
  });
});
