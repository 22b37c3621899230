/**
 * The feature store's part of the aggregating consumer's delivery: add the delivery's events to
 * the exact per-user, per-day counters, and note which users changed. Both happen in the
 * delivery's transaction (with its checkpoint), so a crash or a redelivery never counts an event
 * twice; the DynamoDB or Postgres store is written later by the feature subscription
 * (`features/subscription.ts`), from the committed counters, with absolute values.
 */
import type postgres from "postgres";
import type { NewEvent } from "../../../src/platform.ts";
import { AnalyticsFeaturesChanged } from "../events.ts";
import { addCounters, type CountedRow, countEvents } from "./counters.ts";

type Cause = Parameters<typeof AnalyticsFeaturesChanged.with>[1]["causedBy"];

/** USERS_PER_EVENT bounds the user ids one `analytics.features_changed` names. */
export const USERS_PER_EVENT = 1000;

/**
 * countFeatures adds `rows` to the feature counters through `sql` (the delivery's transaction):
 * `counted` is the statement under way, and `changed` the `analytics.features_changed` events to
 * append in the same transaction (known without waiting for it, so both go out together).
 */
export function countFeatures(sql: postgres.Sql, rows: readonly CountedRow[], cause: Cause): { counted: Promise<void>; changed: NewEvent[] } {
  if (rows.length === 0) return { counted: Promise.resolve(), changed: [] };
  const counted = addCounters(sql, countEvents(rows));
  const users = [...new Set(rows.map((r) => r.user_id))];
  const changed: NewEvent[] = [];
  for (let i = 0; i < users.length; i += USERS_PER_EVENT) {
    const userIds = users.slice(i, i + USERS_PER_EVENT);
    changed.push(AnalyticsFeaturesChanged.with({ userIds }, { subject: userIds[0]!, causedBy: cause }));
  }
  return { counted, changed };
}
