import { type SQL, sql } from "drizzle-orm";
import { afterCommit, type Tx, writeBehind } from "../../src/db/client.ts";
import { relaxCommit } from "../durability.ts";
import { HORIZON } from "../horizon.ts";
import { EVENT_COLUMNS, type EventRow, executePrepared, executePreparedText, renderQuery } from "../store.ts";
import type { EventFilter } from "./filter.ts";
import type { PartitionLease } from "./lease.ts";
import type { Partition } from "./subscription.ts";

const noop = () => {};

/** The configuration parameter whose (failed) read makes a fenced advance raise: its name is the error's text. */
const FENCE = "outbox.checkpoint_moved_or_lease_lost";

/** Checkpoint is one partition's row in `outbox.subscriptions`, as the worker reads it. */
export interface Checkpoint {
  last_transaction_id: string;
  last_position: string;
  status: "active" | "paused";
  lease_owner: string | null;
  failing_position: string | null;
  failing_attempts: number;
  start_snapshot: string | null;
}

/** PeekRow is a row of the peek: the checkpoint's columns (prefixed), the read horizon, and an event's columns, or nulls when there is none. */
type PeekRow = { [K in keyof Checkpoint as `cp_${K}`]: Checkpoint[K] } & { horizon: string } & (EventRow | { [K in keyof EventRow]: null });

/** Seen is a checkpoint and the batch of events past it, as one read found them. */
export interface Seen {
  cp: Checkpoint;
  batch: EventRow[];
}

/**
 * subscriptionFilter is the SQL condition (`and ...`, or nothing) keeping the events of
 * `types` (null: every type) in partition `partition` of `partitions`, by hash of the subject.
 * Workers read with it and the admin API counts lag with it.
 */
export function subscriptionFilter(types: readonly string[] | null, partitions: number, partition: number): SQL {
  const n = partitions;
  // The partition test is wrapped in CASE on purpose: Postgres guesses an equality on an
  // expression matches 0.5% of rows, and with that guess it would rather seq-scan and sort the
  // whole log than walk (transaction_id, position) from the checkpoint and stop at the limit;
  // a CASE is guessed at 50%, which keeps the ordered index scan. Same rows, same order.
  return sql`${types ? sql`and type = any(${sql.param(types)}::text[])` : sql``}
           ${n > 1 ? sql`and (case when ((hashtext(subject)::bigint % ${n}) + ${n}) % ${n} = ${partition} then true else false end)` : sql``}`;
}

// The one read of a checkpoint row, plain (peek) or locked for the batch's transaction.
function checkpointRead(p: Partition, lock: boolean): SQL {
  return sql`
        select last_transaction_id::text, last_position::text, status, lease_owner, failing_position::text, failing_attempts, start_snapshot
          from outbox.subscriptions where name = ${p.sub.name} and partition = ${p.partition}${lock ? sql` for update` : sql``}`;
}

/**
 * PartitionCheckpoint reads a partition's checkpoint and the events past it, locks it for a
 * batch's transaction and advances it. Finding another process named as the lease owner
 * drops this process's lease, so its worker stops delivering at once.
 */
export class PartitionCheckpoint {
  /**
   * The read horizon the last peek saw: the oldest transaction then running (the snapshot's xmin),
   * or, for a narrowed look, the oldest one that may append (`outbox.read_horizon()`,
   * `../horizon.ts`); it hides every event committed by a later one.
   * A loop woken for an append that the peek did not find waits for this transaction's end
   * (`WakeSignal.waitForCommit`).
   */
  horizon: string | undefined;
  /**
   * Set by the loop when an append it was woken for sits behind the horizon the last look saw:
   * the next look reads below the narrowed horizon (`outbox.read_horizon()`), which skips
   * transactions that declared they append nothing. Cleared by that look.
   */
  narrowNext = false;
  #peekQuery: { sql: string; params: unknown[] } | undefined;
  #narrowedQuery: { sql: string; params: unknown[] } | undefined;

  constructor(
    private readonly p: Partition,
    private readonly lease: PartitionLease,
    private readonly filter: EventFilter,
  ) {}

  /**
   * peek reads the checkpoint and the next batch without locking anything. Most polls find
   * nothing, and a poll that locked the checkpoint row first would take a transaction id, hold
   * back every reader's horizon (`transaction_id < snapshot xmin`) until it ended, and flush a
   * commit record to disk, for nothing. Null when there is nothing to do.
   */
  async peek(): Promise<Seen | null> {
    const { deps, sub, partition } = this.p;
    // One statement, one round trip: the checkpoint, and (when this process owns the lease and
    // the partition is active) the batch past it, each event row carrying the checkpoint too.
    const types = sub.matcher.types;
    // Its values never change for this partition: rendered once, not on every poll. Two forms:
    // the plain one reads below the snapshot's xmin, as every look does; the narrowed one below
    // `outbox.read_horizon()` (a read of pg_locks, and a statement about twice as long to plan),
    // which skips transactions that declared they append nothing. The loop asks for the narrowed
    // one (`narrowNext`) only when an append it was woken for sits behind the plain horizon, the
    // one case where the two can differ in what they find.
    const narrow = this.narrowNext;
    this.narrowNext = false;
    const filter = subscriptionFilter(types, sub.partitions, partition);
    const query = (horizon: SQL) => sql`
        select c.last_transaction_id::text as cp_last_transaction_id, c.last_position::text as cp_last_position, c.status as cp_status,
               c.lease_owner as cp_lease_owner, c.failing_position::text as cp_failing_position, c.failing_attempts as cp_failing_attempts,
               c.start_snapshot as cp_start_snapshot, ${horizon}::text as horizon, e.*
          from outbox.subscriptions c
          left join lateral (
            select ${EVENT_COLUMNS} from outbox.events
             where c.status = 'active' and c.lease_owner = ${deps.processId}
               and (transaction_id, position) > (c.last_transaction_id, c.last_position)
               and transaction_id < ${horizon}
               ${filter}
             order by events.transaction_id, events.position
             limit ${sub.batchSize}) e on true
         where c.name = ${sub.name} and c.partition = ${partition}`;
    const name = `outbox_peek_${types ? "typed" : "all"}_${sub.partitions > 1 ? "partitioned" : "whole"}`;
    let rows: PeekRow[];
    if (narrow) {
      // Worked out once (a materialized CTE), for the filter and the column alike.
      this.#narrowedQuery ??= renderQuery(sql`with hz as materialized (select ${sql.raw(HORIZON)} as h) ${query(sql`(select h from hz)`)}`);
      rows = await executePreparedText<PeekRow>(deps.db, this.#narrowedQuery, `${name}_narrowed`);
    } else {
      this.#peekQuery ??= renderQuery(query(sql`pg_snapshot_xmin(pg_current_snapshot())`));
      rows = await executePreparedText<PeekRow>(deps.db, this.#peekQuery, name);
    }
    const first = rows[0];
    this.horizon = first?.horizon;
    if (!first || first.cp_lease_owner !== deps.processId) {
      this.lease.lost();
      return null;
    }
    const cp: Checkpoint = {
      last_transaction_id: first.cp_last_transaction_id,
      last_position: first.cp_last_position,
      status: first.cp_status,
      lease_owner: first.cp_lease_owner,
      failing_position: first.cp_failing_position,
      failing_attempts: first.cp_failing_attempts,
      start_snapshot: first.cp_start_snapshot,
    };
    if (cp.status === "paused") return null;
    this.filter.noteStart(cp);
    if (first.position === null) return null;
    return { cp, batch: rows as EventRow[] };
  }

  /** lock takes the checkpoint row for this transaction, or null if another process owns the lease. */
  async lock(tx: Tx): Promise<Checkpoint | null> {
    const [cp] = await executePrepared<Checkpoint>(tx, checkpointRead(this.p, true), "outbox_checkpoint_lock");
    if (!cp || cp.lease_owner !== this.p.deps.processId) {
      this.lease.lost();
      return null;
    }
    this.filter.noteStart(cp);
    return cp;
  }

  /**
   * advance moves the checkpoint from `from` (the checkpoint the batch started from: as the peek
   * read it, or as `lock` returned it) to `to`, and extends the lease, in the batch's
   * transaction; `clearFailure` forgets the event that was failing, once it is past.
   *
   * It is also the batch's fence (see `./lease.ts`): the update takes the checkpoint's row lock
   * and changes the row only if it still names this process as the lease owner and still stands
   * at `from`; otherwise it raises, so the whole transaction (the handler's effects with it)
   * rolls back, and `isCheckpointFenceError` tells the worker to look again. A batch therefore
   * needs no lock up front: its transaction takes no transaction id until its first write
   * (often the COMMIT's packet), and a transaction id is what holds every reader's horizon back.
   *
   * Write-behind: the update travels with the COMMIT (no round trip of its own). After the
   * commit, the wake-up is told this transaction ended: loops waiting for the horizon to pass it
   * look again (see `WakeSignal.waitForCommit`).
   */
  async advance(tx: Tx, from: Checkpoint, to: EventRow, processed: number, clearFailure: boolean): Promise<void> {
    const { sub, partition, deps } = this.p;
    if (deps.relaxedCommit) await relaxCommit(tx);
    // A `select` of a configuration parameter that is never set raises at run time (an
    // expression in the statement's text would be folded, and raise, at plan time): how one
    // statement makes a compare-and-set that matched nothing fail its transaction.
    const statement = executePrepared(
      tx,
      sql`
      with moved as (
        update outbox.subscriptions
           set last_transaction_id = ${to.transaction_id}::xid8, last_position = ${to.position}::bigint,
               processed_count = processed_count + ${processed},
               lease_expires_at = now() + make_interval(secs => ${deps.leaseSeconds}),
               updated_at = now()
               ${clearFailure ? sql`, failing_position = null, failing_attempts = 0, first_failed_at = null` : sql``}
         where name = ${sub.name} and partition = ${partition} and lease_owner = ${deps.processId}
           and last_transaction_id = ${from.last_transaction_id}::xid8 and last_position = ${from.last_position}::bigint
        returning pg_current_xact_id()::text as xid)
      select xid from moved
      union all
      select current_setting(${sql.raw(`'${FENCE}'`)}) where not exists (select 1 from moved)`,
      clearFailure ? "outbox_checkpoint_advance_clear" : "outbox_checkpoint_advance",
    );
    let xid: string | undefined;
    statement.then((rows) => {
      xid = (rows as { xid: string }[])[0]?.xid;
    }, noop);
    afterCommit(() => {
      if (xid !== undefined) deps.wakeup.ended(xid);
    });
    await writeBehind(tx, statement);
    this.lease.renewed();
  }
}

/**
 * isCheckpointFenceError says whether `err` (or its cause) is a batch's fence failing: the
 * checkpoint moved (a replay, another process) or the lease went to another process while the
 * batch ran. Its transaction rolled back; nothing of the batch happened.
 */
export function isCheckpointFenceError(err: unknown): boolean {
  for (let e = err as { code?: unknown; message?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (e.code === "42704" && String(e.message).includes(FENCE)) return true;
  }
  return false;
}
