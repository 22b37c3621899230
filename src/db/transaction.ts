import { AsyncLocalStorage } from "node:async_hooks";
import { PostgresJsSession, PostgresJsTransaction } from "drizzle-orm/postgres-js";
import type postgres from "postgres";
import type { Db, Tx } from "./client.ts";

type TransactionFn = Parameters<Db["transaction"]>[0];
type TransactionConfig = Parameters<Db["transaction"]>[1];

/** TransactionAbortedError: COMMIT found the transaction aborted by an error that the callback caught and did not rethrow. */
export class TransactionAbortedError extends Error {
  constructor() {
    super("the transaction was aborted by an earlier failed statement and has been rolled back; rethrow database errors inside a transaction, or use a nested transaction (savepoint) to recover from one");
    this.name = "TransactionAbortedError";
  }
}

/** TransactionFinishedError: a statement was sent through a transaction handle after the transaction had ended. */
export class TransactionFinishedError extends Error {
  constructor(how: string) {
    super(`the transaction this handle belongs to has ${how}; statements sent through it are refused`);
    this.name = "TransactionFinishedError";
  }
}

/** The part of postgres.js's connection object the runner touches. */
interface PgConnection {
  onclose?: ((err: Error) => void) | null;
  /** Set by `reserve()`; with `release` false the connection goes back to the pool (or, when the pool is ending, closes) as soon as it is idle. */
  reserved?: { release?: boolean } | null;
}

interface CommitScope {
  callbacks: (() => void)[];
}
const commitScopes = new AsyncLocalStorage<CommitScope>();

/**
 * afterCommit schedules `cb` to run once the outermost `db.transaction` around the caller has
 * committed (never if it rolls back). Outside a transaction it runs on the next tick.
 */
export function afterCommit(cb: () => void): void {
  const scope = commitScopes.getStore();
  if (scope) scope.callbacks.push(cb);
  else queueMicrotask(cb);
}

const WRITE_BEHIND = Symbol("writeBehind");

/** pendingOf is the list of write-behind statements of a top-level transaction handle, else undefined. */
const pendingOf = (executor: unknown): Promise<unknown>[] | undefined => (executor as { [WRITE_BEHIND]?: Promise<unknown>[] })[WRITE_BEHIND];

/**
 * writeBehind lets a statement's reply be checked at commit instead of now. Inside a top-level
 * `db.transaction` it resolves at once: the statement is already on its way, the next statement
 * (or COMMIT) follows it in the same packet, and before committing the runner waits for it; if
 * it failed, the transaction rolls back and `db.transaction` throws that statement's error.
 * Anywhere else (the pool, a savepoint) it simply waits for the statement.
 *
 * For writes whose outcome the caller does not need before going on, such as the outbox's
 * append: statements on a transaction run in order, so later ones still see the row.
 */
export function writeBehind(executor: unknown, statement: Promise<unknown>): Promise<void> {
  const pending = pendingOf(executor);
  if (!pending) return statement.then(() => {});
  statement.catch(() => {}); // observed at commit
  pending.push(statement);
  return Promise.resolve();
}

/**
 * settleWriteBehind waits for the write-behind statements sent so far on `executor` and throws
 * the first one's error. For callers that run several units of work in one transaction and must
 * tell which unit failed (the outbox worker, after each handler).
 */
export async function settleWriteBehind(executor: unknown): Promise<void> {
  const pending = pendingOf(executor);
  if (!pending?.length) return;
  const n = pending.length;
  const failed = await firstFailure(pending.slice(0, n));
  // A failure stays listed, so the runner still reports it rather than a later 25P02.
  if (failed) throw failed.error;
  pending.splice(0, n);
}

/**
 * writeBehindCause returns the error to report for `err`, raised inside a transaction: when `err`
 * is Postgres's "current transaction is aborted" (25P02) and a write-behind statement failed
 * before it, that statement's error (the cause); otherwise `err` itself.
 */
export async function writeBehindCause(executor: unknown, err: unknown): Promise<unknown> {
  const pending = pendingOf(executor);
  if (!pending?.length || !isAbortedTransaction(err)) return err;
  return (await firstFailure(pending))?.error ?? err;
}

/** isAbortedTransaction tells Postgres's 25P02, raw or wrapped by drizzle. */
function isAbortedTransaction(err: unknown): boolean {
  const e = err as { code?: string; cause?: { code?: string } } | undefined;
  return e?.code === "25P02" || e?.cause?.code === "25P02";
}

/** firstFailure waits for every statement and returns the first one's error, if any failed. */
async function firstFailure(statements: readonly Promise<unknown>[]): Promise<{ error: unknown } | undefined> {
  const settled = await Promise.allSettled(statements);
  const failed = settled.find((r) => r.status === "rejected");
  return failed ? { error: (failed as PromiseRejectedResult).reason } : undefined;
}

/**
 * createTransactionRunner returns the `db.transaction` every module uses. It differs from
 * drizzle's (postgres.js `sql.begin`) in four ways:
 *
 * - **BEGIN is pipelined.** postgres.js waits for BEGIN's reply before sending the first
 *   statement; here BEGIN goes out in the same packet as the first statement (as Npgsql does),
 *   so a transaction costs one round trip less. BEGIN on a healthy idle connection cannot fail;
 *   if the connection fails, every statement behind it fails too.
 * - **A swallowed error cannot commit.** A statement that failed inside the callback aborts the
 *   transaction even when the callback caught the error; Postgres then answers COMMIT with
 *   ROLLBACK, and this runner throws `TransactionAbortedError` instead of returning as if the
 *   writes had landed.
 * - **Write-behind statements** (`writeBehind`) are checked at commit, so COMMIT can travel with
 *   the last of them.
 * - **A handle outlives nothing.** Statements sent through a transaction handle after the
 *   transaction ended (a leaked `tx`, a fire-and-forget query, a dead connection) are refused
 *   with `TransactionFinishedError` rather than sent down a connection that is back in the pool,
 *   possibly inside another caller's transaction.
 *
 * Nested `tx.transaction()` calls are savepoints. Callbacks registered with `afterCommit` run
 * after the outermost transaction commits.
 */
export function createTransactionRunner(pool: postgres.Sql, db: Db): Db["transaction"] {
  // The transaction handle is built exactly as drizzle builds it in `PostgresJsSession.transaction`,
  // from the pool session's dialect, schema and options, over the reserved connection.
  const { dialect, schema, options } = db._.session as unknown as { dialect: never; schema: never; options: never };

  async function run<T>(fn: (tx: Tx) => Promise<T>, config: TransactionConfig): Promise<T> {
    const reserved = await pool.reserve();
    // Why the handle no longer takes statements; errors are made only when one is refused.
    let ended: "committed" | "rolled back" | "lost its connection" | undefined;
    let closed = false;
    let over = false; // the connection is no longer ours: later close reports are someone else's
    let connection: PgConnection | undefined;
    let onClosed: (err: Error) => void = () => {};
    const closing = new Promise<never>((_, reject) => {
      onClosed = reject;
    });
    closing.catch(() => {});
    // BEGIN is not awaited: the callback's first statement follows it down the same connection
    // (postgres.js pipelines on a reserved connection). onexecute hands over the connection
    // object so a close is noticed; returning true keeps the connection open for pipelining.
    const begin = reserved.unsafe("begin", [], {
      onexecute: (c: PgConnection) => {
        connection = c;
        c.onclose = (err) => {
          if (over) return;
          closed = true;
          ended = "lost its connection";
          onClosed(err);
        };
        return true;
      },
    } as postgres.UnsafeQueryOptions);
    begin.catch(() => {});
    const client = guard(reserved, () => ended);
    const tx = new PostgresJsTransaction(dialect, new PostgresJsSession(client as never, dialect, schema, options), schema) as unknown as Tx;
    const pending: Promise<unknown>[] = [];
    Object.defineProperty(tx, WRITE_BEHIND, { value: pending });
    // COMMIT and ROLLBACK end the transaction and hand the connection back: postgres.js returns it
    // to the pool the moment Postgres reports it idle (or closes it if the pool is ending, so
    // `sql.end()` never waits on it), as it does after `sql.begin`. Nothing is sent through it
    // once one of them is on its way.
    let handedBack = false;
    const finish = async (statement: "commit" | "rollback") => {
      if (connection?.reserved) {
        connection.reserved.release = false;
        handedBack = true;
      }
      const q = statement === "commit" ? client.unsafe("commit") : reserved.unsafe("rollback");
      q.catch(() => {}); // sends it now (a postgres.js query starts when first awaited), before `ended` is set
      try {
        return await Promise.race([q, closing]);
      } finally {
        over = handedBack;
      }
    };
    try {
      const result = await Promise.race([config ? tx.setTransaction(config).then(() => fn(tx)) : fn(tx), closing]);
      await begin; // settled long ago (it went first); a failed BEGIN must not be followed by COMMIT
      const commit = finish("commit");
      commit.catch(() => {});
      ended = "committed";
      if (pending.length) {
        // COMMIT is already behind them on the wire; if one failed, Postgres answers it with ROLLBACK.
        const failed = await Promise.race([firstFailure(pending), closing]);
        if (failed) {
          await commit.catch(() => {});
          throw failed.error;
        }
      }
      const done = await commit;
      if (done.command !== "COMMIT") throw new TransactionAbortedError();
      return result;
    } catch (err) {
      if (!ended) {
        ended = "rolled back";
        await finish("rollback").catch(() => {});
      } else if (ended === "committed") {
        ended = "rolled back"; // COMMIT was sent, and did not commit
      }
      // A write-behind statement that failed makes every later one fail with "current
      // transaction is aborted" (25P02): report the cause, not the consequence.
      throw closed ? err : await writeBehindCause(tx, err);
    } finally {
      // A closed connection was already taken back by the pool (to reconnect it later);
      // releasing it would put a dead connection among the open ones.
      if (!closed && !handedBack) {
        over = true;
        reserved.release();
      }
    }
  }

  return (async (fn: TransactionFn, config?: TransactionConfig) => {
    const outer = commitScopes.getStore();
    if (outer) return run(fn as never, config);
    const scope: CommitScope = { callbacks: [] };
    const result = await commitScopes.run(scope, () => run(fn as never, config));
    for (const cb of scope.callbacks) cb();
    return result;
  }) as Db["transaction"];
}

/** The part of a postgres.js query the guard touches: its lazy start. */
interface LazyQuery {
  handle(): Promise<void>;
  executed: boolean;
  reject(err: Error): void;
}

/**
 * guard wraps a reserved connection so that every query made through it (tagged template,
 * `unsafe`, `file`) is refused once `ended()` says the transaction is over, and adds the
 * `savepoint` method drizzle's nested transactions call. A postgres.js query starts when it is
 * first awaited (`handle`), so that is where the check sits.
 */
function guard(reserved: postgres.ReservedSql, ended: () => string | undefined): postgres.Sql {
  let savepoints = 0;
  let start: LazyQuery["handle"] | undefined;
  function guardedHandle(this: LazyQuery): Promise<void> {
    const how = ended();
    if (!how) return start!.call(this);
    if (!this.executed) {
      this.executed = true;
      this.reject(new TransactionFinishedError(how));
    }
    return Promise.resolve();
  }
  const check = <Q>(q: Q): Q => {
    const query = q as unknown as LazyQuery;
    if (typeof query?.handle !== "function") return q; // a fragment or helper, not a query
    start ??= query.handle;
    query.handle = guardedHandle;
    return q;
  };
  const wrapped: postgres.Sql = new Proxy(reserved, {
    apply: (target, self, args) => check(Reflect.apply(target, self, args)),
    get(target, prop, receiver) {
      if (prop === "unsafe" || prop === "file") {
        const f = Reflect.get(target, prop, receiver) as (...a: unknown[]) => unknown;
        return (...a: unknown[]) => check(f(...a));
      }
      if (prop === "savepoint") return savepoint;
      if (prop === "release" || prop === "begin" || prop === "reserve" || prop === "end") return undefined;
      return Reflect.get(target, prop, receiver);
    },
  }) as unknown as postgres.Sql;

  async function savepoint<T>(fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
    const name = `s${++savepoints}`;
    await wrapped.unsafe(`savepoint ${name}`);
    try {
      const result = await fn(wrapped);
      await wrapped.unsafe(`release savepoint ${name}`);
      return result;
    } catch (err) {
      if (!ended()) await wrapped.unsafe(`rollback to savepoint ${name}`).catch(() => {});
      throw err;
    }
  }
  return wrapped;
}
