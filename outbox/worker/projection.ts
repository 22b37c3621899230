import { errorText } from "../error-text.ts";
import { type Checkpoint, isCheckpointFenceError, type PartitionCheckpoint, type Seen } from "./checkpoint.ts";
import type { EventFilter } from "./filter.ts";
import type { PerEventDelivery } from "./per-event.ts";
import { type BatchOutcome, type BatchProjection, deliveryTransaction, handlerContext, type Partition } from "./subscription.ts";

/**
 * ProjectionDelivery hands a batch projection its whole batch in the checkpoint's transaction,
 * exactly once for Postgres effects. When the projection throws, everything rolls back and the
 * range of that batch is delivered event by event instead (`PerEventDelivery`), so retries,
 * backoff and dead letters concern the poison event alone; whole batches resume past it.
 */
export class ProjectionDelivery {
  // The end of the batch that failed as a whole: up to there, events go one at a time.
  #eventByEventThrough: { tx: bigint; pos: bigint } | undefined;

  constructor(
    private readonly p: Partition,
    private readonly project: BatchProjection,
    private readonly checkpoint: PartitionCheckpoint,
    private readonly filter: EventFilter,
    private readonly perEvent: PerEventDelivery,
  ) {}

  /** deliver handles the batch `seen` found, whole or, after a failure, event by event. */
  async deliver(seen: Seen): Promise<BatchOutcome> {
    if (!this.#eventByEvent(seen.cp)) {
      const whole = await this.#deliverWhole(seen);
      if (whole) return whole;
    }
    return this.perEvent.deliver(seen);
  }

  // Null when the projection threw and the batch is to go event by event.
  async #deliverWhole(seen: Seen): Promise<BatchOutcome | null> {
    const { sub, partition, deps } = this.p;
    const { cp, batch } = seen;
    try {
      const handled = await deliveryTransaction(this.p, async (tx) => {
        const matched = this.filter.matching(batch);
        if (matched.length) {
          const started = performance.now();
          await this.project(matched, handlerContext(this.p, tx, 1));
          deps.metrics.handlerDuration(sub.name, (performance.now() - started) / 1000 / matched.length);
        }
        await this.checkpoint.advance(tx, cp, batch[batch.length - 1]!, matched.length, true);
        return matched.length;
      });
      if (handled) deps.metrics.processed(sub.name, partition, handled);
      return { processed: batch.length };
    } catch (err) {
      if (isCheckpointFenceError(err)) throw err;
      const last = batch[batch.length - 1]!;
      this.#eventByEventThrough = { tx: BigInt(last.transaction_id), pos: BigInt(last.position) };
      deps.metrics.failed(sub.name, partition);
      deps.log.warn({ subscription: sub.name, partition, error: errorText(err), through: last.position }, "batch handler failed; retrying event by event");
      return null;
    }
  }

  // True while the checkpoint is still inside the range of a batch that failed as a whole.
  #eventByEvent(cp: Checkpoint): boolean {
    const until = this.#eventByEventThrough;
    if (!until) return false;
    const tx = BigInt(cp.last_transaction_id);
    const inside = tx < until.tx || (tx === until.tx && BigInt(cp.last_position) < until.pos);
    if (!inside) this.#eventByEventThrough = undefined;
    return inside;
  }
}
