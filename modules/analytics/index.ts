import { type Appender, type Db, defineModule } from "../../src/platform.ts";
import type { InventoryApi } from "../inventory/index.ts";
import type { OrdersApi } from "../orders/index.ts";
import { aggregateClickstream, DEFAULT_SESSIONS_LINGER_MS } from "./consumer.ts";
import { createProductCatalog } from "./enrich.ts";
import { analyticsEvents } from "./events.ts";
import { createPostgresFeatureStore } from "./features/postgres-store.ts";
import { featureRoutes } from "./features/routes.ts";
import { DEFAULT_FEATURES_LINGER_MS, refreshFeatures } from "./features/subscription.ts";
import type { FeatureStore } from "./features/types.ts";
import { type ClickstreamSinkOptions, relayClickstream } from "./kinesis-sink.ts";
import { partitionMaintenance } from "./partitions.ts";
import { createCustomerProfiles } from "./profiles.ts";
import { analyticsRoutes } from "./routes.ts";
import { type Aggregate, DEFAULT_ALLOWED_LATENESS_MS } from "./windows.ts";

export { createDynamoClient, createDynamoFeatureStore, createFeatureTable } from "./features/dynamo-store.ts";
export { createPostgresFeatureStore } from "./features/postgres-store.ts";
export type { FeatureItem, FeatureStore, FeatureType, FeatureValues } from "./features/types.ts";
export { CLICKSTREAM_SINK, type ClickstreamSinkOptions } from "./kinesis-sink.ts";
export type { CustomerTier } from "./profiles.ts";
export type { Aggregate, RiskLevel, Velocity } from "./windows.ts";

/** AnalyticsApi is the analytics module's read API (nothing is read synchronously from it yet). */
export type AnalyticsApi = Record<string, never>;

/** AnalyticsModuleDeps are the analytics module's dependencies, given by the composition root. */
export interface AnalyticsModuleDeps {
  db: Db;
  outbox: Appender;
  /** The catalog that gives product names, categories, prices and costs to enrichment. */
  inventory: Pick<InventoryApi, "getProducts">;
  /** The customer histories that give users' tiers and order counts to enrichment. */
  orders: Pick<OrdersApi, "getCustomerHistories">;
  /** Drop the clickstream's daily partitions once they are this many days old (0, the default: keep them all). */
  retentionDays?: number;
  /** Told about a partition maintenance round that failed (it is retried an hour later). */
  onBackgroundError?: (err: unknown) => void;
  /** Where per-user features are kept: DynamoDB (createDynamoFeatureStore) or, by default, Postgres. */
  featureStore?: FeatureStore;
  /** The Kinesis stream accepted clickstream records also go to (partition key userId); unset: none. */
  kinesis?: ClickstreamSinkOptions;
  /** The key anonymous ingestion must send in `x-api-key`; unset: only signed-in users ingest. */
  ingestKey?: string;
  /** How long after a window's end it still takes events (default 2 minutes). */
  allowedLatenessMs?: number;
  /**
   * How long the sessions consumer waits after a delivery that was not full (default 1 s; see the
   * outbox's `lingerMs`): fewer, larger deliveries, each user written once for more of its events.
   */
  sessionsLingerMs?: number;
  /** The same for the feature refresh (default 5 s): each user's features recomputed about once per wait. */
  featuresLingerMs?: number;
  clock?: () => Date;
  /** Told how many late events each delivery skipped, per aggregate (the `late_events` metric). */
  onLateEvents?: (aggregate: Aggregate, count: number) => void;
}

/**
 * createAnalyticsModule builds the analytics module: clickstream ingestion with enrichment (the
 * catalog's products, the users' order histories), the daily-partitioned clickstream and its
 * maintenance, the event-time windowed aggregates kept by a durable consumer, their alerts, and
 * the admin reads, the per-user feature store (Postgres or DynamoDB) and, when configured, the
 * Kinesis sink of records.
 *
 * @example const analytics = createAnalyticsModule({ db, outbox, inventory: inventory.api, orders: orders.api, ingestKey: config.ANALYTICS_INGEST_KEY });
 */
export function createAnalyticsModule(deps: AnalyticsModuleDeps) {
  const allowedLatenessMs = deps.allowedLatenessMs ?? DEFAULT_ALLOWED_LATENESS_MS;
  const sessionsLingerMs = deps.sessionsLingerMs ?? DEFAULT_SESSIONS_LINGER_MS;
  const catalog = createProductCatalog(deps.inventory);
  const profiles = createCustomerProfiles(deps.orders);
  const clock = deps.clock ?? (() => new Date());
  const featureStore = deps.featureStore ?? createPostgresFeatureStore(deps.db, clock);
  const api: AnalyticsApi = {};
  return defineModule<AnalyticsApi>({
    name: "analytics",
    events: analyticsEvents,
    api,
    routes: (router) => {
      analyticsRoutes(router, {
        db: deps.db,
        outbox: deps.outbox,
        catalog,
        profiles,
        ingestKey: deps.ingestKey,
        allowedLatenessMs,
        clock,
      });
      featureRoutes(router, { store: featureStore });
    },
    subscriptions: [
      ...aggregateClickstream({ outbox: deps.outbox, allowedLatenessMs, sessionsLingerMs, onLate: deps.onLateEvents }),
      refreshFeatures({ store: featureStore, clock, lingerMs: deps.featuresLingerMs ?? DEFAULT_FEATURES_LINGER_MS }),
      ...(deps.kinesis ? [relayClickstream(deps.kinesis)] : []),
    ],
    background: [partitionMaintenance({ db: deps.db, retentionDays: deps.retentionDays ?? 0, clock, onError: deps.onBackgroundError })],
  });
}
