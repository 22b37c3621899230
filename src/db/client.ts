import { drizzle, type PostgresJsDatabase } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import { createTransactionRunner } from "./transaction.ts";

export { afterCommit, settleWriteBehind, TransactionAbortedError, TransactionFinishedError, writeBehind, writeBehindCause } from "./transaction.ts";

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
  const db = drizzle(sql) as Db;
  Object.assign(db, { transaction: createTransactionRunner(sql, db) });
  return {
    sql,
    db,
    url,
    close: (timeout = 5) => sql.end({ timeout }),
  };
}
