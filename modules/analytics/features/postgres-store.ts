/**
 * The Postgres feature store (`analytics.user_features`), used when FEATURE_STORE_TABLE is not
 * set: the same items as the DynamoDB table, each with its own `updatedAt` and `ttl`, kept as one
 * row per user (the items by feature type, in `items`) rather than one per item: a refresh writes
 * every feature of thousands of users at once, and seven rows per user made that upsert about five
 * times as dear for 5,000 users (1.5 times in the analytics benchmark's smaller refreshes). Items are read only while their `ttl` has not passed. A put that
 * brings every feature type of a user replaces the row, its expired items with it; one that
 * brings fewer merges them in (items of a type no longer written stay, never read once expired).
 */
import { type Db, declareNoAppends, rawSql } from "../../../src/platform.ts";
import type { StoredFeatureItems } from "./schema.ts";
import { FEATURE_TYPES, type FeatureItem, type FeatureStore, lastPerKey } from "./types.ts";

/**
 * createPostgresFeatureStore keeps feature items in `analytics.user_features`.
 *
 * @example const store = createPostgresFeatureStore(db); await store.get(userId);
 */
export function createPostgresFeatureStore(db: Db, clock: () => Date = () => new Date()): FeatureStore {
  const sql = rawSql(db);
  return {
    kind: "postgres",
    async put(given) {
      // One statement cannot update a row twice: the items go by user, and a key given twice keeps its later item.
      const items = lastPerKey(given);
      if (items.length === 0) return;
      const byUser = new Map<string, StoredFeatureItems>();
      for (const i of items) {
        let row = byUser.get(i.userId);
        if (!row) byUser.set(i.userId, (row = {}));
        row[i.featureType] = { value: i.value, updatedAt: i.updatedAt, ttl: i.ttl };
      }
      // Each user's items travel as one element of one JSON parameter (one native stringify),
      // read as `json` (its input only checks the text) and each row's items made `jsonb` on their own.
      const doc = JSON.stringify(Array.from(byUser, ([userId, row]) => [userId, row]));
      await db.transaction(async (handle) => {
        // It appends no events: declared so, this write (thousands of rows) does not hold back the
        // outbox's readers (the windows consumer) while it runs.
        await declareNoAppends(handle);
        await rawSql(handle)`
          insert into analytics.user_features as f (user_id, items)
          select x->>0, (x->1)::jsonb from json_array_elements(${doc}::text::json) as x
          on conflict (user_id) do update
            set items = case when excluded.items ?& ${FEATURE_TYPES}::text[] then excluded.items else f.items || excluded.items end`;
      });
    },
    async get(userId) {
      const [row] = await sql<{ items: StoredFeatureItems }[]>`
        select items from analytics.user_features where user_id = ${userId}`;
      if (!row) return [];
      const now = clock().getTime() / 1000;
      return Object.entries(row.items)
        .filter(([, item]) => item.ttl > now)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([featureType, item]) => ({ userId, featureType, value: item.value, updatedAt: item.updatedAt, ttl: item.ttl }) as FeatureItem);
    },
  };
}
