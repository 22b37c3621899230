/**
 * `analytics.features`: recomputes the features of the users each `analytics.features_changed`
 * names, from the committed counters, and writes them to the feature store. It is a relay (it
 * holds no transaction while DynamoDB answers) and at least once: the items are absolute values,
 * so a repeated or late write leaves the same result. One leased subscription writes in log
 * order, so a user's newer features are never overwritten by older ones.
 *
 * A store that is down or throttling defers the batch (DeliveryDeferredError: retried with
 * backoff for as long as it lasts, no attempt counted, nothing dead-lettered); only a request
 * the store refuses as invalid counts attempts toward the dead letters.
 */
import { DeliveryDeferredError, defineSubscription, failureKind, fullJitterDelay } from "../../../src/platform.ts";
import { AnalyticsFeaturesChanged } from "../events.ts";
import { computeFeatures, readWindow } from "./counters.ts";
import { FEATURE_TYPES, FEATURE_WINDOW_DAYS, type FeatureItem, type FeatureStore } from "./types.ts";

/** USERS_PER_READ bounds the users whose counters one query sums. */
const USERS_PER_READ = 500;

/** RefreshDeps are what the feature subscription needs. */
export interface RefreshDeps {
  store: FeatureStore;
  clock: () => Date;
  /** The wait after a batch that was not full (the outbox's `lingerMs`; default none). */
  lingerMs?: number;
}

/** refreshFeatures is the subscription that writes recomputed features to the store. */
export function refreshFeatures(deps: RefreshDeps) {
  let deferrals = 0;
  return defineSubscription({
    name: "analytics.features",
    on: [AnalyticsFeaturesChanged],
    kind: "sink",
    batchSize: 20,
    // A refresh costs per user, and every sessions delivery names most of its active users
    // again: lingering as the sessions consumer does refreshes each at most about once per wait.
    lingerMs: deps.lingerMs ?? 0,
    batchHandler: async (events, { sql }) => {
      const users = [...new Set(events.flatMap((e) => e.data.userIds))];
      for (let i = 0; i < users.length; i += USERS_PER_READ) {
        const now = deps.clock();
        const window = await readWindow(sql, users.slice(i, i + USERS_PER_READ), now);
        const ttl = Math.floor(now.getTime() / 1000) + FEATURE_WINDOW_DAYS * 86_400;
        // One text for every item of the refresh (they share their time), not one per item.
        const updatedAt = now.toISOString();
        const items: FeatureItem[] = [];
        for (const [userId, { summed, depth }] of window) {
          const values = computeFeatures(summed, depth);
          for (const featureType of FEATURE_TYPES) items.push({ userId, featureType, value: values[featureType], updatedAt, ttl } as FeatureItem);
        }
        try {
          await deps.store.put(items);
        } catch (err) {
          if (failureKind(err) === "invalid-request") throw err;
          const delayMs = fullJitterDelay(++deferrals, 100, 5_000);
          throw new DeliveryDeferredError(`feature store (${deps.store.kind}) write failed: ${(err as Error).message ?? err}`, delayMs, { cause: err });
        }
      }
      deferrals = 0;
    },
  });
}
