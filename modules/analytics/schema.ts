import { sql } from "drizzle-orm";
import { bigint, check, index, integer, jsonb, pgSchema, primaryKey, smallint, text, timestamp, uuid } from "drizzle-orm/pg-core";

export const analyticsSchema = pgSchema("analytics");

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: "string" });

/**
 * clickstream: every accepted event, enriched, append-only, range-partitioned by day of
 * `received_at` (UTC). drizzle-kit cannot express partitioning: the table is made partitioned by
 * hand-written SQL in its migration (0012), with `analytics.create_clickstream_partitions` and
 * `analytics.drop_clickstream_partitions`; see partitions.ts. There is no primary key: a unique
 * index on a partitioned table must hold the partition key, and a retried event (same `eventId`)
 * arrives at another `received_at`, so uniqueness lives in `clickstream_ids`. `batch_id` names the
 * request that stored the row: the consumer reads a batch's rows by it.
 */
export const clickstream = analyticsSchema.table(
  "clickstream",
  {
    eventId: uuid("event_id").notNull(),
    batchId: uuid("batch_id").notNull(),
    /** The event's place in its request, so the consumer applies a batch in the order it was sent. */
    batchIndex: smallint("batch_index").notNull(),
    userId: text("user_id").notNull(),
    sessionId: text("session_id").notNull(),
    eventType: text("event_type", { enum: ["page_view", "add_to_cart", "purchase", "search"] }).notNull(),
    productId: text("product_id"),
    category: text("category"),
    /** The event's price, or the catalog's when the event gives none and the product is known. */
    priceCents: bigint("price_cents", { mode: "number" }),
    quantity: integer("quantity"),
    deviceType: text("device_type"),
    country: text("country"),
    region: text("region"),
    query: text("query"),
    /** The event's time: the client's `clientTime` when given, else when it was received. */
    eventTime: ts("event_time").notNull(),
    clientTime: ts("client_time"),
    /** When the server took the event: the partition key. */
    receivedAt: ts("received_at").notNull(),
    version: text("version").notNull(),
    source: text("source").notNull(),
    /** Derived features, the user's profile and product metadata (see enrich.ts). */
    features: jsonb("features").$type<Record<string, unknown>>().notNull(),
  },
  (t) => [index("clickstream_batch_idx").on(t.batchId)],
);

/**
 * clickstream_ids: the id of every stored clickstream event, the dedupe key. Ingestion inserts
 * the ids first (`on conflict do nothing`) and stores only the rows whose id was new, in the same
 * statement: the same `eventId` is stored and counted once whatever its clientTime or when it is
 * sent again. Dropping a day's partition (retention) deletes its ids too.
 */
export const clickstreamIds = analyticsSchema.table("clickstream_ids", {
  eventId: uuid("event_id").primaryKey(),
});

/** revenue_windows: purchases per category per 5-minute tumbling window (event time). */
export const revenueWindows = analyticsSchema.table(
  "revenue_windows",
  {
    windowStart: ts("window_start").notNull(),
    category: text("category").notNull(),
    orderCount: integer("order_count").notNull(),
    revenueCents: bigint("revenue_cents", { mode: "number" }).notNull(),
    uniqueCustomers: integer("unique_customers").notNull(),
  },
  (t) => [primaryKey({ columns: [t.windowStart, t.category] })],
);

/** revenue_customers: who bought in a revenue window, so unique customers are counted exactly. */
export const revenueCustomers = analyticsSchema.table(
  "revenue_customers",
  {
    windowStart: ts("window_start").notNull(),
    category: text("category").notNull(),
    userId: text("user_id").notNull(),
  },
  (t) => [primaryKey({ columns: [t.windowStart, t.category, t.userId] })],
);

/** risk_windows: purchases per user per 1-hour window, with the highest level already alerted. */
export const riskWindows = analyticsSchema.table(
  "risk_windows",
  {
    userId: text("user_id").notNull(),
    windowStart: ts("window_start").notNull(),
    purchaseCount: integer("purchase_count").notNull(),
    totalCents: bigint("total_cents", { mode: "number" }).notNull(),
    countryCount: integer("country_count").notNull(),
    level: text("level", { enum: ["LOW_RISK", "MEDIUM_RISK", "HIGH_RISK"] }).notNull(),
    /** 0 none, 1 MEDIUM_RISK, 2 HIGH_RISK: each level is alerted once per user-hour. */
    alertedRank: smallint("alerted_rank").notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.userId, t.windowStart] }), index("risk_windows_level_idx").on(t.level, t.windowStart)],
);

/** risk_countries: the distinct countries a user bought from in a risk window. */
export const riskCountries = analyticsSchema.table(
  "risk_countries",
  {
    userId: text("user_id").notNull(),
    windowStart: ts("window_start").notNull(),
    country: text("country").notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.windowStart, t.country] })],
);

/** velocity_windows: units sold per product per 1-hour window, with the category last reported. */
export const velocityWindows = analyticsSchema.table(
  "velocity_windows",
  {
    productId: text("product_id").notNull(),
    windowStart: ts("window_start").notNull(),
    units: integer("units").notNull(),
    saleCount: integer("sale_count").notNull(),
    reported: text("reported", { enum: ["FAST_MOVING", "MODERATE", "SLOW_MOVING"] }),
  },
  (t) => [primaryKey({ columns: [t.productId, t.windowStart] }), index("velocity_windows_start_idx").on(t.windowStart)],
);

/**
 * consumer_state: the aggregating consumer's watermark (the highest event time it has applied)
 * and its late-event count, one row per aggregate, written in the delivery's transaction.
 */
export const consumerState = analyticsSchema.table(
  "consumer_state",
  {
    aggregate: text("aggregate").primaryKey(),
    watermark: ts("watermark"),
    lateEvents: bigint("late_events", { mode: "number" }).notNull().default(0),
  },
  (t) => [check("consumer_state_late_nonnegative", sql`${t.lateEvents} >= 0`)],
);

/**
 * consumer_batches: the batches each aggregating consumer has applied (`consumer` is its
 * subscription's name), written in the delivery's transaction. A batch delivered again (an
 * admin replay moves the checkpoint back) is skipped, so the increments are applied once
 * whatever the checkpoint does. Rows go with the clickstream partition of their `received_at`.
 */
export const consumerBatches = analyticsSchema.table(
  "consumer_batches",
  {
    consumer: text("consumer").notNull(),
    batchId: uuid("batch_id").notNull(),
    /** The batch's receive time (its clickstream partition); null for batches announced without it. */
    receivedAt: ts("received_at"),
  },
  (t) => [primaryKey({ columns: [t.consumer, t.batchId] }), index("consumer_batches_received_at_idx").on(t.receivedAt)],
);

/**
 * sessions: a user's events under one sessionId, split where 30 minutes pass without an event
 * (event time). An event that bridges two sessions merges them (the later row is deleted).
 */
export const sessions = analyticsSchema.table(
  "sessions",
  {
    id: uuid("id").primaryKey(),
    userId: text("user_id").notNull(),
    sessionId: text("session_id").notNull(),
    startTime: ts("start_time").notNull(),
    endTime: ts("end_time").notNull(),
    eventCount: integer("event_count").notNull(),
    pageViews: integer("page_views").notNull(),
    cartAdditions: integer("cart_additions").notNull(),
    purchases: integer("purchases").notNull(),
    revenueCents: bigint("revenue_cents", { mode: "number" }).notNull(),
  },
  // No index holds end_time or the counters, which every event changes: with the free space the
  // migration leaves in each page (fillfactor 70), the consumer's updates are HOT (no index writes).
  (t) => [index("sessions_key_idx").on(t.userId, t.sessionId), index("sessions_start_idx").on(t.startTime, t.userId, t.sessionId)],
);
export * from "./features/schema.ts";
