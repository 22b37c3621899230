import { AsyncLocalStorage } from "node:async_hooks";
import type postgres from "postgres";
import { adopt, clientOf, hold, holds, isServerError, letGo, type PgConnection, type PgQuery, type QueryHandler, send, sendBegin } from "./driver-internals.ts";
import { firstFailure, isAbortedTransaction, isFinishedError, TransactionAbortedError, TransactionFinishedError } from "./transaction-errors.ts";

/** CallbackErrorHandler receives what an `afterCommit` callback threw (or its promise rejected with). */
export type CallbackErrorHandler = (err: unknown) => void;

/** defaultCallbackErrorHandler logs to stderr; `connectDatabase` takes a handler that logs properly. */
export const defaultCallbackErrorHandler: CallbackErrorHandler = (err) => console.error("afterCommit callback failed", err);

const scopes = new AsyncLocalStorage<Transaction>();
const TRANSACTION = Symbol("transaction");
const noop = () => {};
const SENT: Promise<void> = Promise.resolve();
// What a transaction handle does not offer: these act on the pool, outside the transaction.
const UNAVAILABLE = new Set(["begin", "reserve", "release", "end", "close", "listen", "notify", "subscribe", "largeObject", "file"]);

/**
 * afterCommit schedules `cb` to run once the `db.transaction` around the caller has committed;
 * never if it rolls back, nor if the savepoint it was registered in rolls back. Each
 * `db.transaction` keeps its own callbacks, also one started inside another. Outside a running
 * transaction `cb` runs on the next tick. A callback that throws is reported to the database's
 * `onCallbackError` and the others still run: the transaction has committed either way.
 */
export function afterCommit(cb: () => void): void {
  const t = scopes.getStore();
  if (t && !t.done) t.callbacks.push(cb);
  else queueMicrotask(() => invoke(cb, t?.report ?? defaultCallbackErrorHandler));
}

function invoke(cb: () => unknown, report: CallbackErrorHandler): void {
  try {
    const r = cb() as PromiseLike<unknown> | undefined;
    if (typeof r?.then === "function") r.then(undefined, report);
  } catch (err) {
    report(err);
  }
}

/** transactionOf returns the running transaction behind a drizzle handle or a transaction's postgres.js client. */
export function transactionOf(executor: unknown): Transaction | undefined {
  const client = (clientOf(executor) ?? executor) as { [TRANSACTION]?: Transaction } | undefined;
  return typeof client === "function" || typeof client === "object" ? client?.[TRANSACTION] : undefined;
}

/**
 * createTransactionRunner returns a postgres.js-style `begin(fn)` that drizzle's
 * `db.transaction` runs on (see `drizzleOn` in driver-internals.ts). It differs from postgres.js's
 * `sql.begin` as follows:
 *
 * - **BEGIN is pipelined.** It goes out in the same packet as the first statement (as Npgsql
 *   does), so a transaction costs one round trip less; with write-behind statements (below)
 *   COMMIT also travels with the last write.
 * - **A swallowed error cannot commit.** A statement that failed aborts the transaction even if
 *   the callback caught it; Postgres answers COMMIT with ROLLBACK, and `db.transaction` throws
 *   `TransactionAbortedError` with that statement's error as `cause`.
 * - **Errors are the cause, not the consequence.** A callback that rethrows "current
 *   transaction is aborted" (25P02) gets the error that aborted it; a write-behind that failed
 *   fails the transaction with its own error.
 * - **A handle outlives nothing.** Statements sent through a handle after its transaction ended
 *   are refused with `TransactionFinishedError`, never run on a connection that went back to the
 *   pool. The connection returns to the pool only when Postgres reports it idle, so a dead one
 *   is never reused; a statement postgres.js refuses to send (an `undefined` parameter, too many
 *   parameters) fails with its error instead of hanging the transaction.
 *
 * Nested `tx.transaction()` calls (and `savepoint(name?, fn)`) are savepoints; rolling one back
 * forgets its write-behind statements and `afterCommit` callbacks.
 */
export function createTransactionRunner(pool: postgres.Sql, opts: { onCallbackError?: CallbackErrorHandler } = {}) {
  const report = opts.onCallbackError ?? defaultCallbackErrorHandler;
  return function runTransaction<T>(options: string | ((sql: postgres.Sql) => T | Promise<T>), fn?: (sql: postgres.Sql) => T | Promise<T>): Promise<T> {
    const body = typeof options === "function" ? options : fn;
    if (typeof body !== "function") return Promise.reject(new TypeError("begin(options?, fn): fn must be a function"));
    const text = typeof options === "string" && options ? `begin ${options.replace(/[^a-z ]/gi, "")}` : "begin";
    const t = new Transaction(pool, text, report);
    return scopes.run(t, () => t.run(body));
  };
}

/** Transaction is one `db.transaction` call: its connection, the statements waiting for it, and what to check at commit. */
export class Transaction {
  readonly sql: postgres.Sql;
  /** Write-behind statements in wire order; those below `checked` are known to have succeeded. */
  readonly pending: Promise<unknown>[] = [];
  checked = 0;
  readonly callbacks: (() => void)[] = [];
  /** The first error Postgres reported in this transaction (and not undone by a savepoint rollback). */
  abortCause: unknown;
  /** Why the handle refuses statements; set as COMMIT or ROLLBACK is sent, or when the connection is gone. */
  ended: string | undefined;
  /** Set once COMMIT or ROLLBACK has been answered (or the transaction failed): the connection is no longer ours. */
  done = false;
  private broken: { error: unknown } | undefined;
  private connection: PgConnection | undefined;
  private full = false; // the connection takes no more pipelined statements until it is idle
  private queue: PgQuery[] = [];
  private finale: PgQuery | undefined; // COMMIT or ROLLBACK: the one statement sent after `ended`
  private savepoints = 0;
  private started: PromiseWithResolvers<void> | undefined; // for write-behinds sent before a connection came
  private readonly handler: QueryHandler;
  private readonly idle = () => this.drain();
  private readonly closed = (err: Error) => this.lost(err);

  constructor(
    private readonly pool: postgres.Sql,
    private readonly beginText: string,
    readonly report: CallbackErrorHandler,
  ) {
    const route: QueryHandler = (q) => this.route(q);
    route.onError = (err) => {
      if (this.abortCause === undefined && isServerError(err) && err.code !== "25P02") this.abortCause = err;
    };
    this.handler = route;
    const unsafe = (text: string, args?: unknown, options?: unknown) =>
      adopt(args !== undefined && !Array.isArray(args) ? pool.unsafe(text, [], args as never) : pool.unsafe(text, args as never, options as never), route);
    const savepoint = (...args: unknown[]) => this.savepoint(args);
    this.sql = new Proxy(pool, {
      apply: (target, self, args) => adopt(Reflect.apply(target, self, args), route),
      get: (target, prop, receiver) => {
        if (prop === "unsafe") return unsafe;
        if (prop === "savepoint") return savepoint;
        if (prop === TRANSACTION) return this;
        if (typeof prop === "string" && UNAVAILABLE.has(prop)) return unavailable(prop);
        return Reflect.get(target, prop, receiver);
      },
    });
  }

  async run<T>(fn: (sql: postgres.Sql) => T | Promise<T>): Promise<T> {
    this.start();
    let result: T;
    try {
      const r = fn(this.sql);
      result = (await (Array.isArray(r) ? Promise.all(r) : r)) as T;
    } catch (err) {
      throw await this.rollback(err);
    }
    await this.commit();
    for (const cb of this.callbacks) invoke(cb, this.report);
    return result;
  }

  /** sending resolves once statements sent now go out on the wire (a connection is held), or will never go. */
  sending(): Promise<void> {
    if (this.connection || this.broken) return SENT;
    this.started ??= Promise.withResolvers<void>();
    return this.started.promise;
  }

  /** causeOf returns the error to report for `err`: for a 25P02, the write-behind (sent since `from`) or the statement that aborted the transaction. */
  async causeOf(err: unknown, from: number): Promise<unknown> {
    if (this.broken && isFinishedError(err)) return this.broken.error;
    if (!isAbortedTransaction(err)) return err;
    const start = Math.max(from, this.checked);
    const failed = start < this.pending.length ? await firstFailure(this.pending.slice(start)) : undefined;
    return failed?.error ?? this.abortCause ?? err;
  }

  private start(): void {
    sendBegin(this.pool, this.beginText, (c) => this.claim(c)).then(noop, (err: unknown) => {
      // Before a connection took it (the pool is ending, Postgres is unreachable): nothing was sent.
      if (this.connection) return;
      this.broken = { error: err };
      this.rejectQueued(err);
    });
  }

  /** claim holds the connection BEGIN is being written on, and sends what waited for it behind BEGIN. */
  private claim(c: PgConnection): void {
    this.connection = c;
    hold(c, this.idle, this.closed);
    this.flush();
    this.started?.resolve();
  }

  private route(q: PgQuery): void {
    const refusal = q === this.finale ? this.broken?.error : this.ended ? new TransactionFinishedError(this.ended) : this.broken?.error;
    if (refusal !== undefined) {
      q.reject(refusal);
      return;
    }
    const c = this.connection;
    if (c === undefined || this.full) {
      this.queue.push(q);
      return;
    }
    if (!holds(c, this.idle)) {
      q.reject(new TransactionFinishedError("lost its connection"));
      return;
    }
    this.full = !send(c, q);
  }

  /** drain runs when nothing is in flight on the held connection: send what waited. */
  private drain(): void {
    this.full = false;
    this.flush();
  }

  private flush(): void {
    const c = this.connection!;
    while (!this.full && this.queue.length > 0) this.full = !send(c, this.queue.shift()!);
  }

  private lost(err: Error): void {
    if (this.done) return;
    this.broken ??= { error: err };
    this.ended ??= "lost its connection";
    this.rejectQueued(err);
  }

  /** failure is the error that broke the transaction, if one did (read fresh: it changes across awaits). */
  private failure(): unknown {
    return this.broken?.error;
  }

  private rejectQueued(err: unknown): void {
    this.started?.resolve();
    const queued = this.queue;
    this.queue = [];
    for (const q of queued) q.reject(err);
  }

  private statement(text: string): PgQuery {
    return adopt(this.pool.unsafe(text) as unknown as PgQuery, this.handler);
  }

  private async commit(): Promise<void> {
    if (this.broken) {
      this.finish();
      throw this.broken.error;
    }
    this.ended = "committed";
    const commit = (this.finale = this.statement("commit"));
    commit.catch(noop); // sends it now, behind the statements in flight (with the last write-behind)
    // If a write-behind statement failed, Postgres answers COMMIT with ROLLBACK.
    const failed = this.checked < this.pending.length ? await firstFailure(this.pending.slice(this.checked)) : undefined;
    let done: { command?: string };
    try {
      done = await commit;
    } catch (err) {
      this.finish();
      throw failed?.error ?? this.failure() ?? err;
    }
    this.finish();
    if (failed) throw failed.error;
    if (done.command !== "COMMIT") throw new TransactionAbortedError(this.abortCause);
  }

  private async rollback(err: unknown): Promise<unknown> {
    if (!this.ended) {
      this.ended = "rolled back";
      // Sent behind BEGIN even if no connection took it yet: BEGIN is on its way.
      if (!this.broken) await (this.finale = this.statement("rollback")).catch(noop);
    }
    this.finish();
    return this.causeOf(err, this.checked);
  }

  private finish(): void {
    this.done = true;
    if (this.connection) letGo(this.connection, this.closed);
  }

  /** savepoint runs `fn` in a savepoint, as postgres.js's `savepoint(name?, fn)` (or tagged: one statement). */
  private async savepoint(args: unknown[]): Promise<unknown> {
    const [first, second] = args;
    if (Array.isArray((first as { raw?: unknown } | null)?.raw)) return this.savepoint([(s: (...a: unknown[]) => unknown) => s(...args)]);
    const fn = typeof first === "function" ? first : second;
    if (typeof fn !== "function") throw new TypeError("savepoint(name?, fn): fn must be a function");
    const label = typeof first === "function" || first === undefined ? "" : `_${String(first)}`;
    const id = `"s${++this.savepoints}${label.replace(/"/g, '""')}"`;
    const mark = { pending: this.pending.length, callbacks: this.callbacks.length, abortCause: this.abortCause };
    await this.sql.unsafe(`savepoint ${id}`);
    let result: unknown;
    try {
      const r = fn(this.sql);
      result = await (Array.isArray(r) ? Promise.all(r) : r);
    } catch (err) {
      throw await this.undo(id, mark, await this.causeOf(err, mark.pending));
    }
    try {
      await this.sql.unsafe(`release savepoint ${id}`); // travels with the savepoint's last write-behind
    } catch (err) {
      const failed = mark.pending < this.pending.length ? await firstFailure(this.pending.slice(mark.pending)) : undefined;
      const cause = failed?.error ?? (isAbortedTransaction(err) ? new TransactionAbortedError(this.abortCause) : err);
      throw await this.undo(id, mark, cause);
    }
    return result;
  }

  /** undo rolls back to savepoint `id`, which forgets what was sent since `mark`, and returns `error` to throw. */
  private async undo(id: string, mark: { pending: number; callbacks: number; abortCause: unknown }, error: unknown): Promise<unknown> {
    if (this.ended || this.broken) return error;
    try {
      await this.sql.unsafe(`rollback to savepoint ${id}`);
    } catch {
      return error;
    }
    this.pending.length = mark.pending;
    this.checked = Math.min(this.checked, mark.pending);
    this.callbacks.length = mark.callbacks;
    this.abortCause = mark.abortCause;
    return error;
  }
}

function unavailable(name: string): () => never {
  return () => {
    throw new TypeError(`${name} is not available on a transaction's client: it would run outside the transaction`);
  };
}
