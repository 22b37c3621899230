/**
 * The feature store's contract: the recommendation features kept per user (their values as zod
 * schemas, so the route documents exactly what is stored), and the one `FeatureStore` interface
 * the Postgres and DynamoDB stores implement.
 */
import { z } from "@hono/zod-openapi";

/** FEATURE_WINDOW_DAYS is how many days (event time, UTC, today included) the features cover; items also expire this long after their write. */
export const FEATURE_WINDOW_DAYS = 30;

const cents = z.number().int().nonnegative();
const share = z.number().min(0).max(1);
const Device = z.enum(["MOBILE", "TABLET", "DESKTOP"]);

/** FeatureValueSchemas maps each feature type (the store's sort key) to the schema of its value. */
export const FeatureValueSchemas = {
  average_order_value: z.object({
    purchases: z.number().int().nonnegative(),
    revenueCents: cents,
    /** revenue / purchases, rounded; null without purchases. */
    averageOrderValueCents: cents.nullable(),
  }),
  purchase_frequency: z.object({
    purchases: z.number().int().nonnegative(),
    /** Days of the window with at least one purchase. */
    purchaseDays: z.number().int().nonnegative(),
    /** purchases x 7 / 30, to 2 decimals. */
    purchasesPerWeek: z.number().nonnegative(),
  }),
  category_preferences: z.object({
    /** Up to 10 categories, best first; score = views + 3 x cart additions + 5 x purchases, share = score / all scores. */
    categories: z.array(
      z.object({
        category: z.string(),
        views: z.number().int().nonnegative(),
        cartAdditions: z.number().int().nonnegative(),
        purchases: z.number().int().nonnegative(),
        score: z.number().int().nonnegative(),
        share,
      }),
    ),
  }),
  price_sensitivity: z.object({
    /** Mean unit price of the priced page views and cart additions; null when none had a price. */
    averageViewedPriceCents: cents.nullable(),
    /** Mean unit price of the purchases (each unit counted); null without priced purchases. */
    averagePurchasedPriceCents: cents.nullable(),
    /** purchased / viewed, to 3 decimals; below 1 the user buys cheaper than they browse. */
    ratio: z.number().nonnegative().nullable(),
    /** HIGH below 0.8, MEDIUM below 1, else LOW; null when the ratio is unknown. */
    level: z.enum(["HIGH", "MEDIUM", "LOW"]).nullable(),
  }),
  device_preference: z.object({
    /** The device class with the most events (ties: MOBILE, TABLET, DESKTOP); null when no event named a device. */
    preferred: Device.nullable(),
    events: z.object({ MOBILE: z.number().int(), TABLET: z.number().int(), DESKTOP: z.number().int() }),
  }),
  hour_preference: z.object({
    /** The UTC hour with the most events (ties: the earliest); null without events. */
    preferredHour: z.number().int().min(0).max(23).nullable(),
    /** Events per UTC hour of event time, index 0-23. */
    hours: z.array(z.number().int().nonnegative()).length(24),
  }),
  session_depth: z.object({
    /** Sessions (30 minutes of inactivity end one) that started in the window. */
    sessions: z.number().int().nonnegative(),
    /** Mean events and page views per session, to 2 decimals; null without sessions. */
    averageEvents: z.number().nonnegative().nullable(),
    averagePageViews: z.number().nonnegative().nullable(),
  }),
} as const;

/** FeatureType is a feature's name: the DynamoDB sort key `featureType`. */
export type FeatureType = keyof typeof FeatureValueSchemas;

/** FEATURE_TYPES lists every feature type, in the order they are shown. */
export const FEATURE_TYPES = Object.keys(FeatureValueSchemas) as FeatureType[];

/** FeatureValues are the values of every feature type. */
export type FeatureValues = { [K in FeatureType]: z.infer<(typeof FeatureValueSchemas)[K]> };

/** FeatureItem is one stored item: partition key userId, sort key featureType, an absolute value, and its expiry. */
export interface FeatureItem<K extends FeatureType = FeatureType> {
  userId: string;
  featureType: K;
  value: FeatureValues[K];
  /** When it was computed (ISO 8601). */
  updatedAt: string;
  /** Epoch seconds after which it is gone: the DynamoDB `ttl` attribute. */
  ttl: number;
}

/**
 * FeatureStore keeps each user's feature items. Items are absolute (recomputed from the exact
 * counters), so writing one again, or late, is harmless: `put` overwrites. `get` never returns
 * an item past its `ttl`, even when the backend has not removed it yet.
 */
export interface FeatureStore {
  /** Which backend it is, for logs and the admin API. */
  readonly kind: "postgres" | "dynamodb";
  put(items: readonly FeatureItem[]): Promise<void>;
  get(userId: string): Promise<FeatureItem[]>;
}

/** lastPerKey keeps the last item of each (userId, featureType), in first-seen order: a put where one key comes twice stores the later. */
export function lastPerKey(items: readonly FeatureItem[]): FeatureItem[] {
  const byKey = new Map<string, FeatureItem>();
  for (const item of items) byKey.set(`${item.userId}\u0000${item.featureType}`, item);
  return [...byKey.values()];
}
