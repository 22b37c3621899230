import { sql } from "drizzle-orm";
import type { Tx } from "../../src/db/client.ts";
import { errorText } from "../error-text.ts";
import { EVENT_COLUMNS, type EventRow, executePrepared, toEnvelope } from "../store.ts";
import type { PartitionCheckpoint } from "./checkpoint.ts";
import type { PerEventDelivery } from "./per-event.ts";
import { deliveryTransaction, type Partition } from "./subscription.ts";

/**
 * Redrive delivers the dead letters an operator asked to redrive (status `redriving`, set by
 * the admin API), through the partition's own worker and under its lease, so they never race
 * its batches, here or in another process. Each is
 * delivered in a savepoint: on success it is marked `redriven`, on failure it is dead again
 * with one more attempt.
 */
export class Redrive {
  constructor(
    private readonly p: Partition,
    private readonly checkpoint: PartitionCheckpoint,
    private readonly perEvent: PerEventDelivery,
  ) {}

  /** run delivers every dead letter of this partition waiting for a redrive. */
  async run(): Promise<void> {
    const { sub, partition, deps } = this.p;
    // One round trip in the common case (nothing asked), instead of a transaction of four.
    const [asked] = await executePrepared<{ asked: boolean }>(
      deps.db,
      sql`
        select exists (select 1 from outbox.dead_letters
                        where subscription = ${sub.name} and partition = ${partition} and status = 'redriving') as asked`,
      "outbox_redrive_asked",
    );
    if (!asked?.asked) return;
    for (;;) {
      const done = await deliveryTransaction(this.p, async (tx) => {
        // Under the checkpoint's row lock, taken first: a process that lost the lease
        // meanwhile redrives nothing (see ./lease.ts).
        if (!(await this.checkpoint.lock(tx))) return false;
        const [dl] = (await tx.execute(sql`
            select id, event_position::text, attempts from outbox.dead_letters
             where subscription = ${sub.name} and partition = ${partition} and status = 'redriving'
             order by event_position limit 1 for update skip locked`)) as unknown as { id: string; event_position: string; attempts: number }[];
        if (!dl) return false;
        const [row] = (await tx.execute(
          sql`select ${EVENT_COLUMNS} from outbox.events where position = ${dl.event_position}::bigint`,
        )) as unknown as EventRow[];
        try {
          await tx.transaction(async (sp) => this.perEvent.runOne(sp as unknown as Tx, toEnvelope(row!), dl.attempts + 1));
          await tx.execute(sql`update outbox.dead_letters set status = 'redriven', redriven_at = now() where id = ${dl.id}::uuid`);
          deps.metrics.processed(sub.name, partition, 1);
        } catch (err) {
          await tx.execute(sql`
            update outbox.dead_letters set status = 'dead', attempts = attempts + 1, error = ${errorText(err)}, last_failed_at = now()
             where id = ${dl.id}::uuid`);
        }
        return true;
      });
      if (!done) return;
    }
  }
}
