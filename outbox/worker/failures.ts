import { randomUUIDv7 } from "bun";
import { sql } from "drizzle-orm";
import type { Tx } from "../../src/db/client.ts";
import { fullJitterDelay } from "../backoff.ts";
import { errorText } from "../error-text.ts";
import type { DeliveryDeferredError } from "../errors.ts";
import type { EventRow } from "../store.ts";
import type { Checkpoint, PartitionCheckpoint } from "./checkpoint.ts";
import { type BatchOutcome, deliveryTransaction, type Partition } from "./subscription.ts";

/**
 * Failures decides what happens after a body throws on an event: retry it after an
 * exponential backoff with full jitter, or, once `maxAttempts` is reached, dead-letter it and
 * move on so later events flow. The failing event and its attempts live on the checkpoint row
 * (`failing_position`, `failing_attempts`), so a retry survives a restart or a takeover.
 */
export class Failures {
  constructor(
    private readonly p: Partition,
    private readonly checkpoint: PartitionCheckpoint,
  ) {}

  /**
   * recover commits what came before the failed event (`redoBefore` delivers it again in a new
   * transaction, since the failure rolled it back), then dead-letters the failed event or
   * records the attempt and returns the backoff before the next. `from` is the checkpoint the
   * batch was read past: if it moved meanwhile (a replay, another process), nothing is recorded
   * and the worker looks again.
   */
  async recover(
    from: Checkpoint,
    batch: EventRow[],
    failedAt: number,
    failure: unknown,
    attempts: number,
    redoBefore?: (tx: Tx) => Promise<number>,
  ): Promise<BatchOutcome> {
    const { sub, partition, deps } = this.p;
    const failed = batch[failedAt]!;
    const error = errorText(failure);
    deps.metrics.failed(sub.name, partition);
    deps.log.warn({ subscription: sub.name, partition, position: failed.position, attempts, error }, "handler failed");
    const giveUp = attempts >= sub.maxAttempts;
    let processed = 0;
    let moved = false;
    await deliveryTransaction(this.p, async (tx) => {
      const cp = await this.checkpoint.lock(tx);
      if (!cp || cp.last_transaction_id !== from.last_transaction_id || cp.last_position !== from.last_position) {
        moved = true;
        return;
      }
      if (redoBefore) processed = await redoBefore(tx);
      if (giveUp) {
        await this.deadLetter(tx, failed, error, attempts);
        await this.checkpoint.advance(tx, cp, failed, processed, true);
        return;
      }
      if (failedAt > 0) await this.checkpoint.advance(tx, cp, batch[failedAt - 1]!, processed, false);
      await tx.execute(sql`
        update outbox.subscriptions
           set failing_position = ${failed.position}::bigint, failing_attempts = ${attempts},
               first_failed_at = case when failing_position = ${failed.position}::bigint then first_failed_at else now() end,
               last_error = ${error}, last_error_at = now()
         where name = ${sub.name} and partition = ${partition}`);
    });
    // Look again at once: the checkpoint as it is now decides what comes next.
    if (moved) return { processed: 0, retryInMs: 0 };
    if (processed) deps.metrics.processed(sub.name, partition, processed);
    if (giveUp) return { processed: processed + 1 };
    return { processed, retryInMs: fullJitterDelay(attempts, sub.backoff.baseMs, sub.backoff.maxMs) };
  }

  /**
   * deferred records a relay's stall (DeliveryDeferredError: throttling, an outage) as the
   * partition's last error, counting no attempt, and returns the relay's own backoff: an
   * outage is not the events' fault, so it must never bring them closer to the dead letters.
   */
  async deferred(err: DeliveryDeferredError): Promise<BatchOutcome> {
    const { sub, partition, deps } = this.p;
    await deps.db.execute(sql`
      update outbox.subscriptions set last_error = ${errorText(err)}, last_error_at = now()
       where name = ${sub.name} and partition = ${partition} and lease_owner = ${deps.processId}`);
    return { processed: 0, retryInMs: err.retryInMs };
  }

  /** deadLetter parks `row` in `outbox.dead_letters` with its error, in the checkpoint's transaction. */
  async deadLetter(tx: Tx, row: EventRow, error: string, attempts: number): Promise<void> {
    const { sub, partition, deps } = this.p;
    await tx.execute(sql`
      insert into outbox.dead_letters (id, subscription, partition, event_position, event_id, event_type, error, attempts, first_failed_at, last_failed_at)
      select ${randomUUIDv7()}::uuid, ${sub.name}, ${partition}, ${row.position}::bigint, ${row.id}::uuid, ${row.type}, ${error}, ${attempts},
             coalesce((select first_failed_at from outbox.subscriptions where name = ${sub.name} and partition = ${partition} and failing_position = ${row.position}::bigint), now()),
             now()
      on conflict (subscription, event_position) do update
         set error = excluded.error, attempts = outbox.dead_letters.attempts + excluded.attempts, status = 'dead', last_failed_at = now()`);
    await tx.execute(sql`
      update outbox.subscriptions set last_error = ${error}, last_error_at = now()
       where name = ${sub.name} and partition = ${partition}`);
    deps.metrics.deadLettered(sub.name);
  }
}
