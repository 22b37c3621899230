/**
 * The feature store's part of the sessions consumer's delivery: add the delivery's events to the
 * exact per-user, per-day counters, in the delivery's transaction (with its checkpoint and its
 * batches' record in `consumer_batches`), so a crash or a redelivery never counts an event twice.
 * The DynamoDB or Postgres store is written later by the feature subscription
 * (`features/subscription.ts`), from the committed counters, with absolute values.
 */
import type postgres from "postgres";
import { addCounters, type CountedRow, countEvents } from "./counters.ts";

/** countFeatures adds `rows` to the feature counters through `sql` (the delivery's transaction). */
export function countFeatures(sql: postgres.Sql, rows: readonly CountedRow[]): Promise<void> {
  if (rows.length === 0) return Promise.resolve();
  return addCounters(sql, countEvents(rows));
}
