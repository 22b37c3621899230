import { AsyncLocalStorage } from "node:async_hooks";
import { drizzle, type PostgresJsDatabase } from "drizzle-orm/postgres-js";
import postgres from "postgres";

/** Db is the drizzle handle every module receives; transactions are the same type. */
export type Db = PostgresJsDatabase<Record<string, never>>;
/** Tx is the handle passed into `db.transaction(async (tx) => ...)`. */
export type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];
/** Executor is anything that can run a query: the pool or an open transaction. */
export type Executor = Db | Tx;

/**
 * rawSql returns the postgres.js client under a drizzle handle: for a transaction, the same
 * transaction. Its tagged templates are prepared statements with no query-builder work, for
 * hot paths such as a handler that writes one row per event.
 */
export function rawSql(executor: Executor): postgres.Sql {
  return (executor as unknown as { _: { session: { client: postgres.Sql } } })._.session.client;
}

/** Database bundles the raw postgres.js pool and its drizzle wrapper. */
export interface Database {
  readonly sql: postgres.Sql;
  readonly db: Db;
  readonly url: string;
  close(timeoutSeconds?: number): Promise<void>;
}

/**
 * connectDatabase opens a pool on `url`. Notices are silenced (migrations emit many) and
 * `bigint` positions come back as strings so they survive JSON.
 */
export function connectDatabase(url: string, opts: { max?: number; applicationName?: string } = {}): Database {
  const sql = postgres(url, {
    max: opts.max ?? 10,
    onnotice: () => {},
    connection: { application_name: opts.applicationName ?? "eventful-monolith" },
  });
  const db = withCommitHooks(drizzle(sql) as Db);
  return {
    sql,
    db,
    url,
    close: (timeout = 5) => sql.end({ timeout }),
  };
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

/** withCommitHooks makes `db.transaction` run the callbacks registered through `afterCommit`. */
function withCommitHooks(db: Db): Db {
  const original = db.transaction.bind(db);
  const transaction = (async (fn: Parameters<Db["transaction"]>[0], config?: Parameters<Db["transaction"]>[1]) => {
    const outer = commitScopes.getStore();
    if (outer) return original(fn, config);
    const scope: CommitScope = { callbacks: [] };
    const result = await commitScopes.run(scope, () => original(fn, config));
    for (const cb of scope.callbacks) cb();
    return result;
  }) as Db["transaction"];
  return Object.assign(db, { transaction });
}
