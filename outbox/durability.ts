import { type Executor, writeBehind } from "../src/db/client.ts";
import { preparedQuery } from "../src/db/driver-internals.ts";
import { transactionOf } from "../src/db/transaction.ts";

/**
 * Delivery transactions that append nothing commit without waiting for the WAL flush.
 *
 * A delivery transaction holds a handler's effects and the checkpoint advance past them, and
 * nothing else: everything in it can be derived again from the event log. Committed with
 * `synchronous_commit = off`, it is visible at once and on disk within three `wal_writer_delay`s
 * (600 ms by default); should Postgres crash in between, it is lost whole (effects and checkpoint
 * together, WAL being a prefix), and the events are simply delivered again, which at-least-once
 * delivery already requires handlers to survive. Any later transaction that commits durably
 * flushes it too, so one that depends on it (it read its rows) cannot outlive it either.
 *
 * A delivery transaction that **appended events** commits durably as usual: those events may be
 * relayed to AWS or reach other processes as soon as they are visible, and redelivery would
 * append new ones with new ids rather than bring the same ones back.
 *
 * Why it matters: the commit is most of a small delivery's time on a slow disk, and while a
 * delivery transaction waits for it, its transaction id holds back every worker's read horizon
 * (`transaction_id < pg_snapshot_xmin(...)`), so other partitions wait for that flush too.
 */
const appended = new WeakSet<object>();

/** noteAppend records that `executor`'s transaction appended events, so it commits durably. */
export function noteAppend(executor: Executor): void {
  const t = transactionOf(executor);
  if (t) appended.add(t);
}

const RELAX = { sql: "select set_config('synchronous_commit', 'off', true)", params: [] as unknown[] };

/**
 * relaxCommit makes `tx` commit without waiting for its WAL flush, unless it appended events.
 * Sent write-behind: it travels with the statement after it (the checkpoint advance), so it
 * costs no round trip.
 */
export function relaxCommit(tx: Executor): Promise<void> {
  const t = transactionOf(tx);
  if (!t || appended.has(t)) return Promise.resolve();
  return writeBehind(tx, preparedQuery(tx, RELAX, "outbox_relaxed_commit"));
}
