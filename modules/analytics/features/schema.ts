import { date, jsonb, pgSchema, primaryKey, text, timestamp } from "drizzle-orm/pg-core";

// The module's schema again, not imported: ../schema.ts re-exports this file (for drizzle-kit),
// and importing it back would be a cycle.
const analyticsSchema = pgSchema("analytics");

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: "string" });

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
 * per (user, feature type) as the DynamoDB table keeps one item; rows past `expires_at` are
 * not read. Every refresh rewrites a user's rows with a new `expires_at`, so that column is in no
 * index (the reads and the expired rows' delete go by user): with the free space migration 0016
 * leaves in each page, those updates are HOT (no index writes).
 */
export const userFeatures = analyticsSchema.table(
  "user_features",
  {
    userId: text("user_id").notNull(),
    featureType: text("feature_type").notNull(),
    value: jsonb("value").$type<unknown>().notNull(),
    updatedAt: ts("updated_at").notNull(),
    expiresAt: ts("expires_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.featureType] })],
);
