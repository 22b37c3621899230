/**
 * Every use the platform makes of postgres.js and drizzle-orm internals, in one file.
 *
 * The transaction runner (`transaction.ts`) gives drizzle's `db.transaction` a postgres.js
 * `begin` of its own. It pipelines BEGIN with the transaction's first statement and its last
 * write-behind statement with COMMIT, so a one-event transaction costs two round trips instead of
 * four. postgres.js has no public API for that, so the runner works the way `sql.begin` works
 * inside postgres.js, and relies on what follows. Both packages are pinned to exact versions in
 * package.json, and `tests/platform/driver-internals.test.ts` checks each point below against the
 * installed code, so an upgrade that breaks one fails there first.
 *
 * postgres.js 3.4.9 (`src/index.js`, `src/connection.js`, `src/query.js`):
 * - A query is a lazy promise: `handle()` runs on the first `then`/`catch`, waits a microtask,
 *   then calls `query.handler(query)`. Replacing `handler` before that sends the query to the
 *   connection the transaction holds instead of the pool (`adopt`). postgres.js calls
 *   `query.reject(err)` as a method, so wrapping it shows the runner every statement's error.
 * - The pool calls `options.onexecute(connection)` as it writes a query, as `sql.begin` relies
 *   on. The runner sends BEGIN through the pool (so `end()` refuses it, and a dead connection is
 *   never picked) and, from inside that callback, holds the connection and sends the statements
 *   waiting behind BEGIN into the same packet (`sendBegin`). Not `reserve()`: a reserve that fails
 *   while connecting stays queued in the pool and later swallows a connection for good (three
 *   killed backends hang a pool of three), and it ignores `end()`.
 * - `connection.execute(query)` writes a query behind those in flight and returns false when the
 *   connection takes no more for now (`send`). `connection.reserved`, a function without
 *   `release`, keeps the pool off the connection; postgres.js calls it whenever nothing is in
 *   flight, and gives the connection back to the pool by itself as soon as Postgres reports it
 *   idle, after COMMIT or ROLLBACK (`hold`). The runner never releases a connection, so it
 *   cannot put a dead one back. `connection.onclose` is called once the socket has closed, after
 *   the pool has cleared `reserved`.
 *
 * patches/postgres@3.4.9.patch (applied by `bun install`, see package.json) fixes bugs in
 * `src/connection.js` (and its CommonJS copy) that no code outside it can work around; the
 * contract test checks each fix is in place:
 * - `onexecute` was skipped when the pool had pipelined the query 100 deep, or the socket was
 *   full; the connection then went back to the pool inside the transaction BEGIN had opened.
 * - A query refused while its message is built (an `undefined` parameter, more than 65,534
 *   parameters, a serializer that throws) rejected the query then in flight instead, and stayed
 *   queued, unsent, forever (porsager/postgres#1082): a pipelined transaction hung.
 * - Bytes buffered for a socket that closed before they were flushed were sent ahead of the next
 *   session's startup message, which then never left: the connection hung on every reconnect.
 * - A backend's FATAL error (57P01 after `pg_terminate_backend`) was kept and handed to the first
 *   query of the connection's next session.
 * - After a socket error, queries written before the close was reported waited forever.
 * - The array types fetched on connecting were not awaited: a backend killed then made an
 *   unhandled rejection, which ends a Bun process.
 *
 * drizzle-orm 0.45.4 (`postgres-js/driver.js`, `postgres-js/session.js`):
 * - `db.transaction(fn, config)` calls `client.begin(cb)` and nested `tx.transaction(fn)` calls
 *   `client.savepoint(cb)`; each wraps the client it is given in a session and a transaction
 *   object and runs `set transaction` for `config` as the first statement. Statements go
 *   through `client.unsafe(text, params, { prepare })` (`drizzleOn`).
 * - A handle's client is `handle._.session.client` (`clientOf`, `rawClient`), and
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
}

/** QueryHandler sends a query; `onError` (runner-defined) sees every error of the queries it sends. */
export interface QueryHandler {
  (query: PgQuery): void;
  onError?: (err: unknown) => void;
}

/** PgConnection is a postgres.js connection as the runner touches it (`src/connection.js`). */
export interface PgConnection {
  execute(query: PgQuery): boolean | undefined;
  reserved: (() => void) | null;
  onclose: ((err: Error) => void) | null;
}

const REJECT = Symbol("postgres.js reject");
type Watched = PgQuery & { [REJECT]: (err: unknown) => void };

function watchedReject(this: Watched, err: unknown): void {
  this.handler.onError?.(err);
  this[REJECT](err);
}

/** adopt routes `query` to `handler` instead of the pool; `handler.onError` sees its error. Fragments and helpers pass through. */
export function adopt<T>(query: T, handler: QueryHandler): T {
  const q = query as unknown as Watched;
  if (typeof q?.handler !== "function") return query;
  q.handler = handler;
  q[REJECT] = q.reject;
  q.reject = watchedReject;
  return query;
}

/**
 * send writes `query` on `connection`, behind the queries in flight there. Returns false when the
 * connection takes no more pipelined queries until it is idle (the query waits for a prepared
 * statement's description, or 100 are in flight). A query postgres.js refuses to write (an
 * `undefined` parameter, too many parameters) is rejected with that error; nothing else changes.
 */
export function send(connection: PgConnection, query: PgQuery): boolean {
  return connection.execute(query) !== false; // undefined: execute() rejected it itself, nothing in flight
}

/**
 * sendBegin sends `text` (BEGIN) through the pool. `onConnection` runs as it is written on a
 * connection, before anything else can be sent there; it must `hold` the connection, and may send
 * the transaction's first statements behind BEGIN at once (they go out in the same packet).
 */
export function sendBegin(pool: postgres.Sql, text: string, onConnection: (connection: PgConnection) => void): PgQuery {
  const onexecute = (c: PgConnection) => {
    onConnection(c);
    return false; // the pool pipelines nothing more on it
  };
  return pool.unsafe(text, [], { onexecute } as postgres.UnsafeQueryOptions) as unknown as PgQuery;
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
  const session = (executor as { _: { session: { prepareQuery(q: unknown, f: undefined, n: string, a: boolean): { execute(): Promise<unknown> } } } })._
    .session;
  return session.prepareQuery(query, undefined, name, false).execute() as Promise<T[]>;
}
