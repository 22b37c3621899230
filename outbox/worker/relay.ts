import { errorText } from "../error-text.ts";
import { DeliveryDeferredError } from "../errors.ts";
import { type EventRow, toEnvelope } from "../store.ts";
import type { BatchResult } from "../types.ts";
import type { PartitionCheckpoint } from "./checkpoint.ts";
import type { Failures } from "./failures.ts";
import type { EventFilter } from "./filter.ts";
import { type BatchOutcome, handlerContext, type Partition, poolAsTx, type Relay } from "./subscription.ts";

/**
 * RelayDelivery hands a relay (a sink) its batch outside any transaction: calling AWS while
 * holding one open would hold back every reader's snapshot horizon. It reads, sends, then
 * commits the checkpoint only if it has not moved meanwhile, so delivery to AWS is at least
 * once, deduplicated downstream by the event id. Events the relay rejects are dead-lettered;
 * a batch that keeps failing is split so one poison event cannot hold back the rest. A relay
 * that throws DeliveryDeferredError (AWS throttling or down) is retried after its delay with no
 * attempt counted, so an outage never dead-letters anything (`../sinks/delivery.ts`).
 */
export class RelayDelivery {
  constructor(
    private readonly p: Partition,
    private readonly relay: Relay,
    private readonly checkpoint: PartitionCheckpoint,
    private readonly filter: EventFilter,
    private readonly failures: Failures,
  ) {}

  /** deliver reads one batch past the checkpoint and relays it. */
  async deliver(): Promise<BatchOutcome> {
    const { sub, partition, deps } = this.p;
    // The checkpoint is locked only when the batch is committed, below.
    const seen = await this.checkpoint.peek();
    if (!seen) return { processed: 0 };
    const { cp, batch } = seen;
    const matched = this.filter.matching(batch);
    const attempts = (cp.failing_position === batch[0]!.position ? cp.failing_attempts : 0) + 1;
    // biome-ignore lint/suspicious/noConfusingVoidType: what a relay returns (see RelaySubscription)
    let result: BatchResult | void;
    try {
      result = matched.length ? await this.relay(matched, handlerContext(this.p, poolAsTx(this.p), attempts)) : undefined;
    } catch (err) {
      // Neither a shutdown nor an outage is the events' fault: no attempt is counted.
      if (this.p.stopping.aborted) return { processed: 0 };
      if (err instanceof DeliveryDeferredError) return this.failures.deferred(err);
      if (attempts >= sub.maxAttempts && batch.length > 1) return this.#isolate(batch, err);
      return this.failures.recover(cp, batch, 0, err, attempts).then((r) => ({ ...r, processed: 0 }));
    }
    const rejected = new Map((result?.rejected ?? []).map((r) => [r.event.id, r.error]));
    await deps.db.transaction(async (tx) => {
      const now = await this.checkpoint.lock(tx);
      if (!now || now.last_position !== cp.last_position || now.last_transaction_id !== cp.last_transaction_id) return;
      for (const row of batch) {
        const error = rejected.get(row.id);
        if (error) await this.failures.deadLetter(tx, row, error, 1);
      }
      await this.checkpoint.advance(tx, now, batch[batch.length - 1]!, matched.length - rejected.size, true);
    });
    deps.metrics.processed(sub.name, partition, matched.length - rejected.size);
    return { processed: batch.length };
  }

  // Sends the events one by one, dead-lettering each that still fails.
  async #isolate(batch: EventRow[], err: unknown): Promise<BatchOutcome> {
    const { sub, deps } = this.p;
    deps.log.warn({ subscription: sub.name, err: errorText(err) }, "batch keeps failing; isolating events");
    for (const row of batch) {
      const env = toEnvelope(row);
      let error: string | undefined;
      if (this.filter.wants(row, env)) {
        try {
          const res = await this.relay([env], handlerContext(this.p, poolAsTx(this.p), sub.maxAttempts));
          error = res?.rejected[0]?.error;
        } catch (e) {
          // An outage or a shutdown while isolating: the rest waits, nothing is dead-lettered for it.
          if (this.p.stopping.aborted) return { processed: 0 };
          if (e instanceof DeliveryDeferredError) return this.failures.deferred(e);
          error = errorText(e);
        }
      }
      await deps.db.transaction(async (tx) => {
        const now = await this.checkpoint.lock(tx);
        if (!now) return;
        if (error) await this.failures.deadLetter(tx, row, error, sub.maxAttempts);
        await this.checkpoint.advance(tx, now, row, error ? 0 : 1, true);
      });
    }
    return { processed: batch.length };
  }
}
