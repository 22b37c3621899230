/**
 * `analytics.features`: recomputes, from the committed counters, the features of the users of each
 * ingested batch once the sessions consumer has counted it, and writes them to the feature store.
 * It is a relay (it holds no transaction while DynamoDB answers) and at least once: the items are
 * absolute values, so a repeated or late write leaves the same result. One leased subscription
 * writes in log order, so a user's newer features are never overwritten by older ones.
 *
 * It follows `analytics.events_ingested` itself rather than an event the sessions consumer would
 * append: that consumer then appends nothing, and declared so (`appends: false`) its long
 * deliveries do not hold back the outbox's read horizon (the windows consumer's reads). A batch
 * is counted once `analytics.consumer_batches` records it for the sessions consumer, in the
 * transaction that counted it; until then this subscription waits, then defers.
 *
 * A store that is down or throttling defers the batch (DeliveryDeferredError: retried with
 * backoff for as long as it lasts, no attempt counted, nothing dead-lettered); only a request
 * the store refuses as invalid counts attempts toward the dead letters.
 */
import type postgres from "postgres";
import { DeliveryDeferredError, defineSubscription, failureKind, fullJitterDelay } from "../../../src/platform.ts";
import { fromBatches, type Ingested } from "../consumer.ts";
import { AnalyticsEventsIngested } from "../events.ts";
import { computeFeatures, readWindow } from "./counters.ts";
import { FEATURE_TYPES, FEATURE_WINDOW_DAYS, type FeatureItem, type FeatureStore } from "./types.ts";

/** COUNTED_BY is the consumer that counts the batches into the feature counters. */
const COUNTED_BY = "analytics.sessions";
/** How long a delivery waits for the sessions consumer to count its batches before deferring, and how often it looks. */
const COUNT_WAIT_MS = 5_000;
const COUNT_POLL_MS = 100;

/**
 * usersToRefresh returns the users of a delivery's batches, once the sessions consumer has counted
 * every batch that still has rows (a batch whose rows retention dropped has none, and no record
 * either). Throws DeliveryDeferredError if that takes longer than COUNT_WAIT_MS.
 */
async function usersToRefresh(sql: postgres.Sql, events: readonly Ingested[], signal?: AbortSignal): Promise<string[]> {
  const rows = await sql<{ batch: string; user_id: string }[]>`select distinct b.id::text as batch, c.user_id ${fromBatches(sql, events)}`;
  const waiting = new Set(rows.map((r) => r.batch));
  const deadline = performance.now() + COUNT_WAIT_MS;
  while (waiting.size > 0) {
    const counted = await sql<{ id: string }[]>`
      select batch_id::text as id from analytics.consumer_batches where consumer = ${COUNTED_BY} and batch_id = any(${[...waiting]}::uuid[])`;
    for (const r of counted) waiting.delete(r.id);
    if (waiting.size === 0) break;
    if (signal?.aborted || performance.now() > deadline)
      throw new DeliveryDeferredError(`waiting for ${COUNTED_BY} to count ${waiting.size} batch(es)`, COUNT_POLL_MS * 5);
    await Bun.sleep(COUNT_POLL_MS);
  }
  return [...new Set(rows.map((r) => r.user_id))];
}

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
    on: [AnalyticsEventsIngested],
    kind: "sink",
    batchSize: 20,
    // A refresh costs per user, and a steady stream names most of its active users again and
    // again: lingering as the sessions consumer does refreshes each at most about once per wait.
    lingerMs: deps.lingerMs ?? 0,
    batchHandler: async (events, { sql, signal }) => {
      const users = await usersToRefresh(sql, events, signal);
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
