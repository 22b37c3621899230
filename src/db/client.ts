import type { PostgresJsDatabase } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import { drizzleOn, rawClient } from "./driver-internals.ts";
import { type CallbackErrorHandler, createTransactionRunner } from "./transaction.ts";

export { afterCommit, type CallbackErrorHandler } from "./transaction.ts";
export { TransactionAbortedError, TransactionFinishedError } from "./transaction-errors.ts";
export { settleWriteBehind, writeBehind, writeBehindCause } from "./write-behind.ts";

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
  return rawClient(executor);
}

/** Database bundles the raw postgres.js pool and its drizzle wrapper. */
export interface Database {
  readonly sql: postgres.Sql;
  readonly db: Db;
  readonly url: string;
  close(timeoutSeconds?: number): Promise<void>;
}

/**
 * connectDatabase opens a pool on `url`, with drizzle's `db.transaction` run by the platform's
 * transaction runner (`transaction.ts`). Notices are silenced (migrations emit many) and `bigint`
 * positions come back as strings so they survive JSON. `onCallbackError` receives what an
 * `afterCommit` callback throws (default: stderr).
 */
export function connectDatabase(url: string, opts: { max?: number; applicationName?: string; onCallbackError?: CallbackErrorHandler } = {}): Database {
  const sql = postgres(url, {
    max: opts.max ?? 10,
    onnotice: () => {},
    connection: { application_name: opts.applicationName ?? "eventful-monolith" },
  });
  const db = drizzleOn<Db>(sql, createTransactionRunner(sql, { onCallbackError: opts.onCallbackError }));
  return {
    sql,
    db,
    url,
    close: (timeout = 5) => sql.end({ timeout }),
  };
}
