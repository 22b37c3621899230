import { type Executor, writeBehind } from "../src/db/client.ts";
import { preparedQuery } from "../src/db/driver-internals.ts";
import { type Transaction, transactionOf } from "../src/db/transaction.ts";

/**
 * The read horizon, and transactions that declare they append nothing.
 *
 * Subscriptions read the events whose transaction id is below the horizon: no transaction still
 * running below it can commit an event that would land behind a checkpoint. Postgres's own
 * choice, the snapshot's xmin, is the oldest transaction running anywhere, appending or not, so
 * one long delivery that only writes a read model held every other subscription back until it
 * committed. `outbox.read_horizon()` (migration 0017) skips the transactions that declared, before
 * their first write, that they append no events: the SQL side of the declaration makes any insert
 * into `outbox.events` fail for the rest of the transaction, and this side refuses the append
 * in the process before it is sent, with the subscription named.
 */

/** HORIZON is the SQL expression of the read horizon, for statements that read the log. */
export const HORIZON = "outbox.read_horizon()";

const DECLARE = { sql: "select outbox.declare_no_appends()", params: [] as unknown[] };

/**
 * declareNoAppends declares that `tx`, a `db.transaction` handle, appends no events, so it never
 * holds back the horizon. Sent write-behind, ahead of everything the transaction sends after it
 * (statements on a transaction run in order); the appender refuses appends on it at once. Call it
 * before the transaction's first write, or Postgres refuses it. Outside a transaction it does
 * nothing: an autocommitted statement cannot be declared (its lock would end with it).
 */
export function declareNoAppends(tx: Executor): Promise<void> {
  const t = transactionOf(tx);
  if (!t) return Promise.resolve();
  // Ended ones are dropped when looked at; swept here too, should no loop look for a while.
  if (declared.size >= 64) for (const o of declared) if (o.done) declared.delete(o);
  declared.add(t);
  return writeBehind(tx, preparedQuery(tx, DECLARE, "outbox_declare_no_appends"));
}

// This process's declared transactions: every running one, and some ended ones until swept.
const declared = new Set<Transaction>();

/**
 * declaredRunning says whether a transaction of this process that declared it appends nothing is
 * still running: only then can a look below the narrowed horizon find more, for an append of
 * this process, than a plain one (other processes' appends ring blind, and are narrowed anyway).
 */
export function declaredRunning(): boolean {
  for (const t of declared) {
    if (!t.done) return true;
    declared.delete(t);
  }
  return false;
}

/** AppendNotDeclaredError is an append in a transaction that declared it appends no events. */
export class AppendNotDeclaredError extends Error {
  constructor() {
    super(
      "this transaction declared that it appends no events: the subscription is defined with `appends: false`, " +
        "so its deliveries do not hold back other subscriptions; remove that option to append from it",
    );
    this.name = "AppendNotDeclaredError";
  }
}

/** assertMayAppend throws AppendNotDeclaredError when `tx` declared it appends no events. */
export function assertMayAppend(tx: Executor): void {
  const t = transactionOf(tx);
  if (t && declared.has(t)) throw new AppendNotDeclaredError();
}
