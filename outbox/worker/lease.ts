import { sql } from "drizzle-orm";
import type { Partition } from "./subscription.ts";

/**
 * PartitionLease is this process's claim on one subscription partition, so that other
 * processes leave it alone. Membership (`../membership.ts`) decides which process should try;
 * the lease row (`lease_owner`, `lease_expires_at` in `outbox.subscriptions`) is what makes
 * delivery exclusive. Renewing costs one update every third of the lease time, and none while
 * batches flow, since each checkpoint advance extends the lease too.
 */
export class PartitionLease {
  #held = false;
  #lastRenew = 0;

  constructor(private readonly p: Partition) {}

  /** held says whether this process believes it holds the lease. */
  get held(): boolean {
    return this.#held;
  }

  /**
   * ensure takes or renews the lease when the partition is assigned here, and hands it back
   * (between batches) once it is assigned to another process. True while it is held.
   */
  async ensure(): Promise<boolean> {
    const { sub, partition, deps } = this.p;
    if (!deps.membership.owns(sub.name, partition)) {
      if (this.#held) {
        await this.release();
        deps.log.info({ subscription: sub.name, partition }, "partition handed over to another process");
      }
      return false;
    }
    const now = Date.now();
    if (this.#held && now - this.#lastRenew < (deps.leaseSeconds * 1000) / 3) return true;
    const got = (await deps.db.execute(sql`
        update outbox.subscriptions
           set lease_owner = ${deps.processId},
               lease_expires_at = now() + make_interval(secs => ${deps.leaseSeconds})
         where name = ${sub.name} and partition = ${partition}
           and (lease_owner is null or lease_owner = ${deps.processId} or lease_expires_at < now())
        returning 1`)) as unknown as unknown[];
    this.#held = got.length > 0;
    if (this.#held) this.#lastRenew = now;
    return this.#held;
  }

  /** release hands the lease back, so the partition's next owner need not wait for it to expire. */
  async release(): Promise<void> {
    if (!this.#held) return;
    const { sub, partition, deps } = this.p;
    await deps.db
      .execute(sql`
        update outbox.subscriptions set lease_owner = null, lease_expires_at = null
         where name = ${sub.name} and partition = ${partition} and lease_owner = ${deps.processId}`)
      .catch(() => {});
    this.#held = false;
  }

  /** renewed notes that a checkpoint advance extended the lease. */
  renewed(): void {
    this.#lastRenew = Date.now();
  }

  /** lost notes that the checkpoint row names another owner (or none). */
  lost(): void {
    this.#held = false;
  }
}
