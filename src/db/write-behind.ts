import { transactionOf } from "./transaction.ts";
import { firstFailure } from "./transaction-errors.ts";

const noop = () => {};

/**
 * writeBehind lets a statement's reply be checked at commit instead of now. Inside a running
 * `db.transaction` (or one of its savepoints) it resolves as soon as the statement is on its way
 * (at once, unless the transaction still waits for a connection): the next statement (or COMMIT,
 * or the savepoint's RELEASE) follows it in the same packet, and the runner checks it before
 * committing; if it failed, the transaction (or the savepoint) rolls back and throws that
 * statement's error. Anywhere else (the pool, a handle whose transaction has ended) it waits for
 * the statement, so its error reaches the caller.
 *
 * For writes whose outcome the caller does not need before going on, such as the outbox's
 * append: statements on a transaction run in order, so later ones still see the row.
 */
export function writeBehind(executor: unknown, statement: Promise<unknown>): Promise<void> {
  const t = transactionOf(executor);
  if (!t || t.ended) return statement.then(noop);
  statement.catch(noop); // observed at commit
  t.pending.push(statement);
  return t.sending();
}

/**
 * settleWriteBehind waits for the write-behind statements sent so far in `executor`'s
 * transaction and throws the first one's error. For callers that run several units of work in
 * one transaction and must tell which unit failed (the outbox worker, after each handler). A
 * failure stays on record, so the transaction still reports it rather than a later 25P02, unless
 * a savepoint that sent it is rolled back.
 */
export async function settleWriteBehind(executor: unknown): Promise<void> {
  const t = transactionOf(executor);
  if (!t || t.checked >= t.pending.length) return;
  const n = t.pending.length;
  const failed = await firstFailure(t.pending.slice(t.checked, n));
  if (failed) throw failed.error;
  t.checked = Math.min(Math.max(t.checked, n), t.pending.length);
}

/**
 * writeBehindCause returns the error to report for `err`, raised inside a transaction: when `err`
 * is Postgres's "current transaction is aborted" (25P02), the failed write-behind statement or
 * the failed statement that caused it; otherwise `err` itself.
 */
export async function writeBehindCause(executor: unknown, err: unknown): Promise<unknown> {
  const t = transactionOf(executor);
  return t ? t.causeOf(err, t.checked) : err;
}
