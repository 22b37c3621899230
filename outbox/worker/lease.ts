import { sql } from "drizzle-orm";
import { executePrepared } from "../store.ts";
import type { Partition } from "./subscription.ts";

// Why two processes never deliver one partition at once, and why a crash costs two seconds.
//
// A partition's lease is `lease_owner` on its checkpoint row in `outbox.subscriptions`. The
// owner renews `lease_expires_at` (every third of `leaseSeconds`, and with every checkpoint
// advance) and heartbeats its membership row (`../membership.ts`). Another process may take
// the lease only when membership assigns it the partition and the lease is free: nobody's,
// expired, or held by a process whose membership row has expired, that is, whose heartbeat
// stopped `timeoutMs` ago (1.5 s by default). That last case is the fast takeover: a killed
// process's partitions are free as soon as its heartbeat is overdue, whatever its leases say.
//
// Fencing, for the bodies that run in a transaction (per-event handlers, batch projections,
// redrives, and the checkpoint commit of relays):
//
// 1. A delivery's transaction commits only through its checkpoint advance (`./checkpoint.ts`),
//    a compare-and-set on the checkpoint row: it changes the row only if the row still names
//    this process as `lease_owner` and still stands where the batch was read from, and raises
//    otherwise, which rolls the whole transaction back (the handler's effects with it). The
//    update takes the row's lock and checks its condition on the newest version of the row.
//    The rarer transactions (recording a failure, dead-lettering, redriving, a relay's commit)
//    lock the row first (`select ... for update`) and go on only if `lease_owner` is this
//    process.
// 2. Taking a lease is an update of that same row (skipping it while it is locked): it changes
//    `lease_owner`, so every batch of the old owner not yet committed fails step 1.
// 3. So each move of a partition's checkpoint is committed once, by the process holding the
//    lease, with the effects of exactly the events it moves past, and each batch starts from
//    the checkpoint the last committed one left. A paused or partitioned ("zombie") process
//    that lost its lease, however stale its view, commits nothing after losing it. Its handler
//    may still be running beside the new owner's for a moment (it holds no lock up front), which
//    at-least-once delivery allows: only one of the two commits.
//
// Why no lock up front: a row lock gives the transaction a transaction id at once, and while
// a transaction with an id is open every reader's horizon (`transaction_id < snapshot xmin`)
// stays behind it, in every database of the server. Locking at the advance, whose write
// travels with the COMMIT, keeps a delivery from holding the horizon while its handler reads.
//
// What a takeover waits for: a `kill -9` closes the dead process's connections, so Postgres
// rolls back its open transaction at once and nothing stays locked. A process paused in the
// middle of a delivery transaction holds the row locks its handler took (not the checkpoint's,
// unless it is committing or in one of the rarer transactions above) until it resumes or its
// connection drops; a new owner's batch that needs those rows waits for them, and the zombie's
// commit, when it comes, fails step 1. A host that vanishes leaves its connections open until the server's
// TCP keepalive gives up; the server setting `idle_in_transaction_session_timeout` bounds it.
//
// Relays send to AWS outside any transaction (holding one open would hold back every reader),
// so only their checkpoint commit is fenced: a relay whose own heartbeat is overdue starts no
// batch (`Membership.alive`), but one paused in the middle of a send for longer than the
// heartbeat timeout can overlap its successor's first send of the same events. Its commit then
// fails step 1; delivery to AWS is at least once, and consumers deduplicate by event id.

/**
 * PartitionLease is this process's claim on one subscription partition (see the argument
 * above). Renewing costs one update every third of the lease time, and none while batches
 * flow, since each checkpoint advance extends the lease too.
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
    // Free: nobody's, ours, expired, or its owner's heartbeat stopped. A row locked by a
    // delivery in progress is skipped rather than waited for: its owner holds it until it ends.
    const got = await executePrepared(
      deps.db,
      sql`
        update outbox.subscriptions s
           set lease_owner = ${deps.processId},
               lease_expires_at = now() + make_interval(secs => ${deps.leaseSeconds})
          from (select name, partition from outbox.subscriptions t
                 where t.name = ${sub.name} and t.partition = ${partition}
                   and (t.lease_owner is null or t.lease_owner = ${deps.processId} or t.lease_expires_at < now()
                        or not exists (select 1 from outbox.subscription_members m
                                        where m.subscription = t.name and m.process_id = t.lease_owner and m.expires_at > now()))
                   for update skip locked) free
         where s.name = free.name and s.partition = free.partition
        returning 1`,
      "outbox_lease_take",
    );
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
