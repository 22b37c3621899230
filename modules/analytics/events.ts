import { z } from "zod";
import { defineEvent } from "../../src/platform.ts";

/**
 * AnalyticsEventsIngested is the analytics module's own note that a request stored clickstream
 * rows: the aggregating consumer reads the rows of `batchId` (internal; the rows are the data).
 */
export const AnalyticsEventsIngested = defineEvent({
  source: "analytics",
  type: "analytics.events_ingested",
  visibility: "internal",
  description: "A request stored new clickstream rows under one batch id (only the rows that were new).",
  // receivedAt (the rows' partition key) lets the consumer read only that day's partition; absent from events appended before it was added.
  schema: z.object({ batchId: z.uuid(), count: z.number().int().positive(), receivedAt: z.iso.datetime().optional() }),
});

/** RiskLevelSchema is a fraud risk level of a user-hour. */
export const RiskLevelSchema = z.enum(["LOW_RISK", "MEDIUM_RISK", "HIGH_RISK"]);

/** VelocitySchema is a product-hour's velocity category. */
export const VelocitySchema = z.enum(["FAST_MOVING", "MODERATE", "SLOW_MOVING"]);

/** AnalyticsFraudRiskDetected is published when a user-hour first reaches MEDIUM_RISK or HIGH_RISK (once per level). */
export const AnalyticsFraudRiskDetected = defineEvent({
  source: "analytics",
  type: "analytics.fraud_risk_detected",
  visibility: "public",
  description: "A user's purchases in one event-time hour reached a fraud risk level (MEDIUM_RISK or HIGH_RISK) for the first time. Money in integer cents.",
  schema: z.object({
    userId: z.string(),
    windowStart: z.iso.datetime(),
    level: z.enum(["MEDIUM_RISK", "HIGH_RISK"]),
    purchaseCount: z.number().int().nonnegative(),
    totalCents: z.number().int().nonnegative(),
    averageCents: z.number().int().nonnegative(),
    countryCount: z.number().int().nonnegative(),
  }),
});

/** AnalyticsProductVelocityChanged is published when a product-hour's reported velocity category changes. */
export const AnalyticsProductVelocityChanged = defineEvent({
  source: "analytics",
  type: "analytics.product_velocity_changed",
  visibility: "public",
  description: "A product's units sold in one event-time hour passed 10 (first report) or moved it to another velocity category.",
  schema: z.object({
    productId: z.string(),
    windowStart: z.iso.datetime(),
    units: z.number().int().nonnegative(),
    saleCount: z.number().int().nonnegative(),
    previous: VelocitySchema.nullable(),
    velocity: VelocitySchema,
  }),
});

/**
 * AnalyticsFeaturesChanged was the sessions consumer's note that it changed the feature counters
 * of these users (internal). No longer appended (the feature subscription follows the ingested
 * batches, so the sessions consumer appends nothing); still defined so that the ones already in
 * a log keep their schema for the admin API and replays.
 */
export const AnalyticsFeaturesChanged = defineEvent({
  source: "analytics",
  type: "analytics.features_changed",
  visibility: "internal",
  description: "The aggregating consumer changed these users' 30-day feature counters; their features are to be recomputed.",
  schema: z.object({ userIds: z.array(z.string()).min(1).max(1000) }),
});

/** analyticsEvents lists every event the analytics module appends (or appended: `analytics.features_changed`). */
export const analyticsEvents = [AnalyticsEventsIngested, AnalyticsFraudRiskDetected, AnalyticsProductVelocityChanged, AnalyticsFeaturesChanged] as const;
