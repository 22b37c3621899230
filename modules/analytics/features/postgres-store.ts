/**
 * The Postgres feature store (`analytics.user_features`), used when FEATURE_STORE_TABLE is not
 * set: the same items as the DynamoDB table, one row per (user, feature type), read only while
 * their `ttl` has not passed. A user's expired rows are deleted when the user's features are
 * written again (a write of every feature type renews them all); those of users never seen again,
 * or of a feature type no longer written, stay (they are never read).
 */
import { type Db, declareNoAppends, rawSql } from "../../../src/platform.ts";
import { FEATURE_TYPES, type FeatureItem, type FeatureStore, type FeatureType, lastPerKey } from "./types.ts";

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
      // One statement cannot update a row twice: a key given twice keeps its later item.
      const items = lastPerKey(given);
      if (items.length === 0) return;
      // A user given every feature type with a ttl ahead of now keeps no expired row once these
      // are written (the feature subscription always writes every type): only the other users'
      // rows are swept, rather than a look at every written user's rows on each refresh.
      const now = clock();
      const renewed = new Map<string, number>();
      for (const i of items) if (i.ttl * 1000 > now.getTime()) renewed.set(i.userId, (renewed.get(i.userId) ?? 0) + 1);
      const users = [...new Set(items.map((i) => i.userId))].filter((u) => (renewed.get(u) ?? 0) < FEATURE_TYPES.length);
      await db.transaction(async (handle) => {
        // It appends no events: declared so, this write (thousands of rows) does not hold back the
        // outbox's readers (the windows consumer) while it runs.
        await declareNoAppends(handle);
        const tx = rawSql(handle);
        // The items travel as one JSON parameter (one native stringify, no array escaping), each an
        // array read by place (jsonb_to_recordset's per-key lookups cost more). Read as `json` (its
        // input only checks the text; each item's fields come from its own short element), not
        // `jsonb`: building the whole document as a tree and copying every element out of it cost
        // Postgres about a quarter more for the 35,000 items of 5,000 users. The items of a put
        // mostly share their time and expiry (a refresh writes them all at once): each distinct pair
        // travels and is converted once, and an item names its pair by place.
        const times: { updatedAt: string; ttl: number }[] = [];
        const timeIndex = new Map<string, number>();
        let last: { updatedAt: string; ttl: number; n: number } | undefined;
        const doc = JSON.stringify(
          items.map((i) => {
            if (last?.updatedAt !== i.updatedAt || last.ttl !== i.ttl) {
              const key = `${i.updatedAt}\u0000${i.ttl}`;
              let n = timeIndex.get(key);
              if (n === undefined) {
                timeIndex.set(key, (n = times.length));
                times.push({ updatedAt: i.updatedAt, ttl: i.ttl });
              }
              last = { updatedAt: i.updatedAt, ttl: i.ttl, n };
            }
            return [i.userId, i.featureType, i.value, last.n];
          }),
        );
        await tx`
          insert into analytics.user_features as f (user_id, feature_type, value, updated_at, expires_at)
          select x->>0, x->>1, (x->2)::jsonb, t.updated_at, t.expires_at
          from json_array_elements(${doc}::text::json) as x
          join (select n - 1 as n, a::timestamptz as updated_at, to_timestamp(e) as expires_at
                from unnest(${times.map((t) => t.updatedAt)}::text[], ${times.map((t) => t.ttl)}::bigint[]) with ordinality as u(a, e, n)) t
            on t.n = (x->>3)::int
          on conflict (user_id, feature_type) do update set value = excluded.value, updated_at = excluded.updated_at, expires_at = excluded.expires_at`;
        if (users.length)
          await tx`delete from analytics.user_features where user_id = any(${users}::text[]) and expires_at <= ${now.toISOString()}::timestamptz`;
      });
    },
    async get(userId) {
      const rows = await sql<{ feature_type: FeatureType; value: unknown; updated_at: string; ttl: string }[]>`
        select feature_type, value, to_char(updated_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as updated_at,
               extract(epoch from expires_at)::bigint as ttl
        from analytics.user_features where user_id = ${userId} and expires_at > ${clock().toISOString()}::timestamptz
        order by feature_type`;
      return rows.map((r) => ({ userId, featureType: r.feature_type, value: r.value, updatedAt: r.updated_at, ttl: Number(r.ttl) }) as FeatureItem);
    },
  };
}
