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

/** DEFAULT_FEATURES_LINGER_MS is how long the feature refresh lets a delivery that was not full gather more batches (5 s). */
export const DEFAULT_FEATURES_LINGER_MS = 5000;

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
  const started = performance.now();
  let waiting = events;
  for (;;) {
    // The batches the sessions consumer has not recorded yet (a key lookup each).
    const uncounted = await sql<{ id: string }[]>`
      select b.id::text as id from unnest(${waiting.map((e) => e.data.batchId)}::uuid[]) as b(id)
      where not exists (select 1 from analytics.consumer_batches cb where cb.consumer = ${COUNTED_BY} and cb.batch_id = b.id)`;
    if (uncounted.length === 0) break;
    const left = new Set(uncounted.map((r) => r.id));
    waiting = waiting.filter((e) => left.has(e.data.batchId));
    const waited = performance.now() - started;
    if (waited > COUNT_POLL_MS * 10 || signal?.aborted) {
      // Every batch announced had rows; one with none left was dropped by retention (its record
      // with it): there is nothing to wait for. Looked for only once the wait is long.
      const alive = await sql<{ id: string }[]>`
        select b.id::text as id from unnest(${waiting.map((e) => e.data.batchId)}::uuid[], ${waiting.map((e) => e.data.receivedAt ?? null)}::text[]::timestamptz[]) as b(id, received_at)
        where exists (select 1 from analytics.clickstream c where c.batch_id = b.id and (b.received_at is null or c.received_at = b.received_at))`;
      if (alive.length === 0) break;
      if (waited > COUNT_WAIT_MS || signal?.aborted)
        throw new DeliveryDeferredError(`waiting for ${COUNTED_BY} to count ${alive.length} batch(es)`, COUNT_POLL_MS * 5);
      const kept = new Set(alive.map((r) => r.id));
      waiting = waiting.filter((e) => kept.has(e.data.batchId));
    }
    await Bun.sleep(COUNT_POLL_MS);
  }
  const users = await sql<{ user_id: string }[]>`select distinct c.user_id ${fromBatches(sql, events)}`;
  return users.map((r) => r.user_id);
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
    // A delivery's cost follows its users, not its batches: take what a linger gathered at once.
    batchSize: 250,
    // A refresh costs per user, and a steady stream names most of its active users again and
    // again: lingering, it refreshes each at most about once per wait.
    lingerMs: deps.lingerMs ?? DEFAULT_FEATURES_LINGER_MS,
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
