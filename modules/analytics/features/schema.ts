import { date, jsonb, pgSchema, primaryKey, text } from "drizzle-orm/pg-core";

// The module's schema again, not imported: ../schema.ts re-exports this file (for drizzle-kit),
// and importing it back would be a cycle.
const analyticsSchema = pgSchema("analytics");

/**
 * feature_days: exact per-user, per-day (event time, UTC) counters the features are computed
 * from, one row per user-day with every counter in `counts` (`{"purchases": 2, "revenue_cents":
 * 4100, "category.view:books": 3, "device:MOBILE": 5, "hour:13": 4, ...}`, see
 * features/counters.ts; a counter is present only when above zero). Added to by the aggregating
 * consumer in its delivery's transaction, so each event counts exactly once; the merge (each
 * added counter summed into the stored ones) is written into that upsert (counters.ts; migration
 * 0014's `analytics.add_counts` computes the same). One row per user-day rather than one
 * per counter: about ten times fewer rows for the consumer to upsert.
 */
export const featureDays = analyticsSchema.table(
  "feature_days",
  {
    userId: text("user_id").notNull(),
    day: date("day", { mode: "string" }).notNull(),
    counts: jsonb("counts").$type<Record<string, number>>().notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.day] })],
);

/**
 * user_features: the Postgres feature store (used when FEATURE_STORE_TABLE is not set), one row
 * per user holding the user's items by feature type, each with its own `updatedAt` and `ttl` as
 * the DynamoDB table's items have them: `{"hour_preference": {"value": {...}, "updatedAt":
 * "2026-12-03T10:00:00.000Z", "ttl": 1767434400}, ...}`; items past their `ttl` are not read.
 * One row rather than one per (user, feature type) as DynamoDB keeps them: a refresh writes every
 * feature of thousands of users at once, and seven rows per user made that upsert about five
 * times as dear for 5,000 users, 1.5 times in the analytics benchmark's smaller refreshes
 * (migration 0018). Every refresh rewrites the row; with no other index and
 * a third of each page left free, those updates stay on their page (HOT).
 */
export const userFeatures = analyticsSchema.table("user_features", {
  userId: text("user_id").primaryKey(),
  items: jsonb("items").$type<StoredFeatureItems>().notNull(),
});

/** StoredFeatureItems is a `user_features` row's items: by feature type, each value with its own time and expiry. */
export type StoredFeatureItems = Record<string, { value: unknown; updatedAt: string; ttl: number }>;
