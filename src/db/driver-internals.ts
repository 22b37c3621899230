/**
 * Every use the platform makes of postgres.js and drizzle-orm internals, in one file.
 *
 * The transaction runner (`transaction.ts`) gives drizzle's `db.transaction` a postgres.js
 * `begin` of its own. It pipelines BEGIN with the transaction's first statement and its last
 * write-behind statement with COMMIT, so a one-event transaction costs two round trips instead of
 * four. postgres.js has no public API for that, so the runner works the way `sql.begin` works
 * inside postgres.js, and it relies on the following. Both packages are pinned to exact versions
 * in package.json, and `tests/platform/driver-internals.test.ts` checks each point below against
 * the installed code, so an upgrade that breaks one fails there before anything else does.
 *
 * postgres.js 3.4.9 (`src/index.js`, `src/connection.js`, `src/query.js`):
 * - A query is a lazy promise: `handle()` runs on the first `then`/`catch`, waits a microtask,
 *   then calls `query.handler(query)`. Replacing `handler` before that sends the query to the
 *   connection the transaction holds instead of the pool.
 * - The pool calls `options.onexecute(connection)` as it writes a query. The runner gets its
 *   connection from an empty query (harmless wherever it lands) and sends BEGIN from inside that
 *   callback, in the same packet. It does not get it from `reserve()`: a reserve that fails
 *   while connecting stays queued in the pool and later swallows a connection for good (three
 *   killed backends hang a pool of three), and it ignores `end()`. Nor does it send BEGIN itself
 *   through the pool: when the pool pipelines BEGIN behind 99 other queries, or the socket is
 *   full, `onexecute` is skipped and the connection goes back to the pool inside a transaction
 *   block (`sql.begin` has that flaw).
 * - `connection.execute(query)` writes a query behind those in flight and returns false when the
 *   connection takes no more for now. `connection.reserved`, a function without `release`,
 *   keeps the pool from using the connection; postgres.js calls it whenever the connection has
 *   nothing in flight, and hands the connection back to the pool by itself as soon as Postgres
 *   reports it idle (after COMMIT or ROLLBACK). So the runner never releases a connection, and
 *   cannot put a dead one back. `connection.onclose` is called when the socket closes (after the
 *   pool has cleared `reserved`), and `connection.terminate()` closes it.
 * - `connection.execute` catches an error thrown while it builds the message (an `undefined`
 *   parameter, more than 65,534 parameters, a serializer that throws) and rejects the query
 *   then active, not the one it was given, which stays queued, unsent, forever
 *   (porsager/postgres#1082). `send` below tells this apart by watching `reject` on the
 *   transaction's queries; the connection is then out of step, and the runner closes it.
 * - After a backend is terminated mid-query, the connection keeps Postgres's FATAL error and
 *   hands it to the first query of its next session. A plain pool query can get that stale
 *   57P01 once; the runner's empty query absorbs it and tries again (`isStaleError`).
 *
 * drizzle-orm 0.45.4 (`postgres-js/driver.js`, `postgres-js/session.js`):
 * - `db.transaction(fn, config)` calls `client.begin(cb)` and nested `tx.transaction(fn)` calls
 *   `client.savepoint(cb)`; each wraps the client it is given in a session and a transaction
 *   object and runs `set transaction` for `config` as the first statement. Statements go
 *   through `client.unsafe(text, params, { prepare })`.
 * - A handle's client is `handle._.session.client` (`rawSql`, `clientOf`), and
 *   `handle._.session.prepareQuery(query, undefined, name, false)` runs a named prepared
 *   statement (`preparedQuery`, for the outbox's fixed statements).
 */
import { drizzle, type PostgresJsDatabase } from "drizzle-orm/postgres-js";
import postgres from "postgres";

/** PINNED_VERSIONS are the versions whose internals this file was written against (package.json pins them). */
export const PINNED_VERSIONS = { postgres: "3.4.9", "drizzle-orm": "0.45.4" } as const;

/** PgQuery is a postgres.js query as the runner touches it (`src/query.js`). */
export interface PgQuery extends Promise<postgres.RowList<postgres.Row[]>> {
  /** Called once, a microtask after the query is first awaited, to send it. */
  handler: QueryHandler;
  /** Rejects the query's promise; postgres.js calls it as a method of the query. */
  reject(err: unknown): void;
  /** True once `handle()` has run (or `startedHere` was called): the query will not be sent twice. */
  executed: boolean;
  /** True while the query is the one the connection waits on (not merely pipelined). */
  active: boolean;
  /** The connection's backend key, set when a connection takes the query. */
  state: object | null;
}

/** QueryHandler sends a query; `onError` (runner-defined) sees every error of the queries it sends. */
export interface QueryHandler {
  (query: PgQuery): void;
  onError?: (err: unknown) => void;
}

/** PgConnection is a postgres.js connection as the runner touches it (`src/connection.js`). */
export interface PgConnection {
  execute(query: PgQuery): boolean | undefined;
  terminate(): void;
  reserved: (() => void) | null;
  onclose: ((err: Error) => void) | null;
}

const REJECT = Symbol("postgres.js reject");
type Watched = PgQuery & { [REJECT]: (err: unknown) => void };

// The query being written by `send`, and the error postgres.js delivered to another query meanwhile.
let sending: PgQuery | null = null;
let misdirected: { error: unknown } | null = null;

function watchedReject(this: Watched, err: unknown): void {
  if (sending !== null && sending !== this) {
    misdirected ??= { error: err };
    return;
  }
  this.handler.onError?.(err);
  this[REJECT](err);
}

/** watch makes `send` able to tell when postgres.js rejects `query` in place of the one it is writing. */
export function watch<Q extends PgQuery>(query: Q): Q {
  const q = query as unknown as Watched;
  q[REJECT] = q.reject;
  q.reject = watchedReject;
  return query;
}

/** adopt routes `query` to `handler` instead of the pool, and watches it. Fragments and helpers pass through. */
export function adopt<T>(query: T, handler: QueryHandler): T {
  const q = query as unknown as PgQuery;
  if (typeof q?.handler !== "function") return query;
  q.handler = handler;
  return watch(q) as T;
}

/** startedHere marks a query the runner sends itself, so that awaiting it never sends it again. */
export function startedHere(query: PgQuery): PgQuery {
  query.executed = true;
  return query;
}

/** SEND_FULL is what `send` returns when the connection takes no more pipelined queries until it is idle. */
export const SEND_FULL = false;

/**
 * send writes `query` on `connection` (every query in flight there must be the runner's own).
 * Returns true when more may follow at once, SEND_FULL otherwise. When postgres.js refuses to
 * write it (see the header), `query` is rejected with that error, `onRefused` gets it, and the
 * connection must be closed: a query sits in its queue that Postgres will never answer.
 */
export function send(connection: PgConnection, query: PgQuery, onRefused: (err: unknown) => void): boolean {
  sending = query;
  let more: boolean | undefined;
  try {
    more = connection.execute(query);
  } finally {
    sending = null;
  }
  if (misdirected !== null) {
    const { error } = misdirected;
    misdirected = null;
    (query as Watched).reject(error);
    onRefused(error);
    return SEND_FULL;
  }
  return more !== false; // undefined: execute() rejected it itself (a cancelled query), nothing in flight
}

/**
 * acquire asks the pool for a connection with an empty query. `onConnection` runs as the query is
 * written, before anything else can be sent on that connection; the pool leaves the connection
 * to the runner if `onConnection` calls `hold` (the empty query then goes first on the wire).
 * If the query settles and `onConnection` never ran, nothing was held: ask again.
 */
export function acquire(pool: postgres.Sql, onConnection: (connection: PgConnection) => void): PgQuery {
  const onexecute = (c: PgConnection) => {
    onConnection(c);
    return false; // the pool pipelines nothing more on it (it is held, or it goes back when idle)
  };
  return watch(pool.unsafe("", [], { onexecute } as postgres.UnsafeQueryOptions) as unknown as PgQuery);
}

/** hold keeps `connection` out of the pool; `onIdle` runs whenever nothing is in flight on it, until Postgres reports it idle (then the pool takes it back). */
export function hold(connection: PgConnection, onIdle: () => void, onClose: (err: Error) => void): void {
  connection.reserved = onIdle;
  connection.onclose = onClose;
}

/** holds tells whether `connection` is still held with `onIdle` (not handed back, not closed). */
export function holds(connection: PgConnection, onIdle: () => void): boolean {
  return connection.reserved === onIdle;
}

/** letGo stops listening for `connection`'s close, unless another holder listens now. */
export function letGo(connection: PgConnection, onClose: (err: Error) => void): void {
  if (connection.onclose === onClose) connection.onclose = null;
}

/** destroy closes `connection`: Postgres ends its session (rolling back), queries in flight fail, the pool reconnects later. */
export function destroy(connection: PgConnection): void {
  connection.terminate();
}

/**
 * isStaleError tells an error that a query got before it was ever sent, because the pool
 * handed it the FATAL error a terminated backend left on its connection (or the server was
 * shutting down or starting up as it connected): sending it again is safe.
 */
export function isStaleError(err: unknown, query: PgQuery): boolean {
  const code = (err as { code?: string } | null)?.code;
  return query.state === null && err instanceof postgres.PostgresError && (code === "57P01" || code === "57P02" || code === "57P03");
}

/**
 * isConnectionError tells an error from the socket or postgres.js's connection handling
 * (ECONNRESET, CONNECTION_CLOSED, ...: both carry `errno`) from one Postgres reported or a
 * refused statement.
 */
export function isConnectionError(err: unknown): boolean {
  return typeof err === "object" && err !== null && "errno" in err && !(err instanceof postgres.PostgresError);
}

/** isServerError tells an error Postgres reported (an ErrorResponse) from one the driver made. */
export function isServerError(err: unknown): err is postgres.PostgresError {
  return err instanceof postgres.PostgresError;
}

const POOL = Symbol("pool");

/**
 * drizzleOn returns a drizzle database over `pool` whose transactions run through `begin`.
 * drizzle gets a client that is the pool in everything but `begin`.
 */
export function drizzleOn<Db extends PostgresJsDatabase<Record<string, never>>>(pool: postgres.Sql, begin: unknown): Db {
  const client = Object.create(pool, { begin: { value: begin }, [POOL]: { value: pool } }) as postgres.Sql;
  return drizzle({ client }) as unknown as Db;
}

/** clientOf returns the postgres.js client under a drizzle handle (the pool's stand-in, or a transaction's). */
export function clientOf(executor: unknown): unknown {
  return (executor as { _?: { session?: { client?: unknown } } } | null)?._?.session?.client;
}

/** rawClient returns the postgres.js client to hand out for a drizzle handle: the pool itself rather than drizzle's stand-in. */
export function rawClient(executor: unknown): postgres.Sql {
  const client = clientOf(executor) as { [POOL]?: postgres.Sql } & postgres.Sql;
  return client[POOL] ?? client;
}

/** preparedQuery runs `query` (already `$n` text) as drizzle runs a `.prepare(name)`d query: a named server-side prepared statement. */
export function preparedQuery<T>(executor: unknown, query: { sql: string; params: unknown[] }, name: string): Promise<T[]> {
  const session = (executor as { _: { session: { prepareQuery(q: unknown, f: undefined, n: string, a: boolean): { execute(): Promise<unknown> } } } })._.session;
  return session.prepareQuery(query, undefined, name, false).execute() as Promise<T[]>;
}
