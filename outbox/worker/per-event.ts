import { settleWriteBehind, type Tx, writeBehindCause } from "../../src/db/client.ts";
import { runWithEventContext } from "../context.ts";
import type { EventContext, EventEnvelope } from "../envelope.ts";
import { type EventRow, toEnvelope } from "../store.ts";
import type { PartitionCheckpoint, Seen } from "./checkpoint.ts";
import type { Failures } from "./failures.ts";
import type { EventFilter } from "./filter.ts";
import { type BatchOutcome, deliveryTransaction, handlerContext, type Partition } from "./subscription.ts";

/** Thrown inside a concurrent batch's transaction when a handler failed, to roll it back. */
class ConcurrentBatchFailed extends Error {}

/**
 * PerEventDelivery delivers a batch one event at a time, all in one transaction with the
 * checkpoint advance: how per-event handlers always run, and how a batch projection's batch
 * that threw is delivered again so that only the poison event is retried. It also delivers
 * single events for redrive, whatever the body.
 */
export class PerEventDelivery {
  constructor(
    private readonly p: Partition,
    private readonly checkpoint: PartitionCheckpoint,
    private readonly filter: EventFilter,
    private readonly failures: Failures,
  ) {}

  /**
   * deliver handles the batch `seen` found. On a failure the whole transaction rolls back; the
   * events before the failing one are then delivered again and committed, and the failing one
   * is retried after a backoff or dead-lettered (see `Failures`).
   */
  async deliver(seen: Seen): Promise<BatchOutcome> {
    // An event being retried is counted and backed off one at a time, as is a batch that failed
    // when handled concurrently (its transaction rolled back: nothing of it happened).
    if (this.p.sub.concurrency > 1 && seen.cp.failing_position === null) {
      const outcome = await this.#deliverConcurrently(seen);
      if (outcome) return outcome;
    }
    return this.#deliverInOrder(seen);
  }

  /**
   * #deliverConcurrently handles the batch with up to `concurrency` handlers running at once on
   * the transaction, events of one subject in log order, one after another (a chain per
   * subject). Returns null, with the transaction rolled back, when a handler failed.
   */
  async #deliverConcurrently(seen: Seen): Promise<BatchOutcome | null> {
    const { sub, partition, deps } = this.p;
    let failed = false;
    const { cp, batch } = seen;
    const processed = await deliveryTransaction(this.p, async (tx) => {
      const running = new Set<Promise<void>>();
      // The last task of each subject: the next event of that subject starts after it.
      const chains = new Map<string, Promise<void>>();
      let handled = 0;
      for (const row of batch) {
        const env = toEnvelope(row);
        if (!this.filter.wants(row, env)) continue;
        while (running.size >= sub.concurrency) await Promise.race(running);
        if (failed) break;
        const task: Promise<void> = (chains.get(env.subject) ?? Promise.resolve())
          .then(() => (failed ? undefined : this.runOne(tx, env, 1)))
          .then(
            () => void handled++,
            () => void (failed = true),
          )
          .finally(() => {
            running.delete(task);
            if (chains.get(env.subject) === task) chains.delete(env.subject);
          });
        running.add(task);
        chains.set(env.subject, task);
      }
      await Promise.all(running);
      // Rolls the transaction back (the runner may report it as the handler's own error).
      if (failed) throw new ConcurrentBatchFailed();
      await this.checkpoint.advance(tx, cp, batch[batch.length - 1]!, handled, true);
      return handled;
    }).catch((err) => {
      if (failed) return -1;
      throw err;
    });
    if (processed < 0) return null;
    if (processed) deps.metrics.processed(sub.name, partition, processed);
    return { processed: batch.length };
  }

  async #deliverInOrder(seen: Seen): Promise<BatchOutcome> {
    const { sub, partition, deps } = this.p;
    let failedAt = -1;
    let failure: unknown;
    const { cp, batch } = seen;
    let failingAttempts = 0;
    try {
      const processed = await deliveryTransaction(this.p, async (tx) => {
        let handled = 0;
        const store: EventContext = { correlationId: "" };
        await runWithEventContext(store, async () => {
          for (let i = 0; i < batch.length; i++) {
            const row = batch[i]!;
            const env = toEnvelope(row);
            if (!this.filter.wants(row, env)) continue;
            failingAttempts = cp.failing_position === row.position ? cp.failing_attempts : 0;
            try {
              await this.runOne(tx, env, failingAttempts + 1, store);
            } catch (err) {
              failedAt = i;
              failure = err;
              throw err;
            }
            handled++;
          }
        });
        await this.checkpoint.advance(tx, cp, batch[batch.length - 1]!, handled, true);
        return handled;
      });
      if (processed) deps.metrics.processed(sub.name, partition, processed);
      return { processed: batch.length };
    } catch (err) {
      if (failedAt < 0) throw err;
      return this.failures.recover(cp, batch, failedAt, failure, failingAttempts + 1, (tx) => this.#redo(tx, batch, failedAt));
    }
  }

  // Delivers again, in the recovery transaction, the events before the one that failed.
  async #redo(tx: Tx, batch: EventRow[], end: number): Promise<number> {
    let processed = 0;
    for (let i = 0; i < end; i++) {
      const env = toEnvelope(batch[i]!);
      if (!this.filter.wants(batch[i]!, env)) continue;
      await this.runOne(tx, env, 1);
      processed++;
    }
    return processed;
  }

  /**
   * runOne delivers one event with the event as the causation of whatever its body appends.
   * Inside a batch the caller passes one `store` already entered for the whole batch (bodies
   * run one after another), which saves entering a new async context per event.
   */
  async runOne(tx: Tx, event: EventEnvelope, attempt: number, store?: EventContext): Promise<void> {
    const started = performance.now();
    if (store) {
      store.correlationId = event.correlationid;
      store.causationId = event.id;
      store.actorId = event.actorid;
      await this.#invoke(tx, event, attempt);
    } else {
      await runWithEventContext({ correlationId: event.correlationid, causationId: event.id, actorId: event.actorid }, () => this.#invoke(tx, event, attempt));
    }
    this.p.deps.metrics.handlerDuration(this.p.sub.name, (performance.now() - started) / 1000);
  }

  async #invoke(tx: Tx, event: EventEnvelope, attempt: number): Promise<void> {
    const body = this.p.sub.body;
    const ctx = handlerContext(this.p, tx, attempt);
    // A body's write-behind statements (its appends) are settled before the next event, so a
    // failed one is charged to the event whose body sent it, with its own error rather than
    // the "transaction is aborted" that the body's later statements got.
    const settle = () => settleWriteBehind(tx);
    const cause = async (err: unknown) => {
      throw await writeBehindCause(tx, err);
    };
    switch (body.kind) {
      case "per-event":
        return body.handle(event, ctx).then(settle, cause);
      case "projection":
        return body.handle([event], ctx).then(settle, cause);
      case "relay": {
        const rejected = (await body.handle([event], ctx))?.rejected[0];
        if (rejected) throw new Error(rejected.error);
      }
    }
  }
}
