import { bigint, date, index, jsonb, pgSchema, primaryKey, text, timestamp } from "drizzle-orm/pg-core";

// The module's schema again, not imported: ../schema.ts re-exports this file (for drizzle-kit),
// and importing it back would be a cycle.
const analyticsSchema = pgSchema("analytics");

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: "string" });

/**
 * feature_counters: exact per-user, per-day (event time, UTC) counters the features are computed
 * from: `purchases`, `revenue_cents`, `category.view:<c>`, `device:<MOBILE|TABLET|DESKTOP>`,
 * `hour:<0-23>` ... (see features/counters.ts). Added to by the aggregating consumer in its
 * delivery's transaction, so each event counts exactly once; a counter is only stored when it is
 * above zero.
 */
export const featureCounters = analyticsSchema.table(
  "feature_counters",
  {
    userId: text("user_id").notNull(),
    day: date("day", { mode: "string" }).notNull(),
    counter: text("counter").notNull(),
    n: bigint("n", { mode: "number" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.day, t.counter] })],
);

/**
 * user_features: the Postgres feature store (used when FEATURE_STORE_TABLE is not set), one row
 * per (user, feature type) as the DynamoDB table keeps one item; rows past `expires_at` are
 * not read.
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
  (t) => [primaryKey({ columns: [t.userId, t.featureType] }), index("user_features_expires_idx").on(t.expiresAt)],
);
