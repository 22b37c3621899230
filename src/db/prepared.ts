import { type Placeholder, type SQL, sql } from "drizzle-orm";
import type { Executor } from "./client.ts";

/**
 * Prepared hot queries. drizzle's query builder renders the SQL text of a query on every call
 * (walking the builder tree, escaping names, collecting parameters: tens of microseconds for an
 * ordinary select), and `db.execute(sql...)` also sends each parameterised statement twice
 * (describe, then execute). A query built once with placeholders skips both: drizzle keeps the
 * text, and postgres.js keeps a server-side prepared statement per connection, so each later
 * call is one round trip carrying only the values.
 */

/** What drizzle can `.prepare(name)`: its select, insert, update and delete builders. */
interface Preparable {
  prepare(name: string): { execute(values?: Record<string, unknown>): Promise<unknown> };
}

/** The parts of drizzle's postgres.js session and prepared query this helper uses. */
interface Session {
  client: unknown;
  dialect: object;
  prepareQuery(query: { sql: string; params: unknown[] }, fields: undefined, name: string, arrayMode: false): DriverQuery;
}
interface DriverQuery {
  client: unknown;
  execute(values?: Record<string, unknown>): Promise<unknown>;
}
interface Dialect {
  sqlToQuery(query: SQL): { sql: string; params: unknown[] };
}

type Built = Preparable | SQL;
type ResultOf<B> = B extends Preparable ? Awaited<ReturnType<ReturnType<B["prepare"]>["execute"]>> : Record<string, unknown>[];
type Values<K extends string> = [K] extends [never] ? [] : [values: Record<K, unknown>];

/** PreparedStatement is a query built once; `execute` runs it on the pool or inside a transaction. */
export interface PreparedStatement<R, K extends string> {
  readonly name: string;
  /** execute runs the statement through `db` (the pool, or a `tx` to run inside that transaction) with the placeholders' values. */
  execute(db: Executor, ...values: Values<K>): Promise<R>;
  /** returns types the rows of a raw `sql` statement (builder queries are typed already). */
  returns<T>(): PreparedStatement<T[], K>;
}

/**
 * prepared declares a query that is built once, with placeholders for its values, and then
 * only executed. `build` gets a handle to build on and one `sql.placeholder` per key; it may
 * return a drizzle builder (select, insert ... returning, update, delete) or a raw `sql` statement.
 * The query is built on first use per database (a `Db` and its transactions share it): inside a
 * transaction it runs on the transaction's connection, with no building at all. Declare it at
 * module level, next to the function that uses it.
 *
 * Use it for the statements a request or a handler runs every time (reads by key, the insert of
 * a command); only where the SQL text does not depend on the input (no optional filters, no
 * `inArray` over a list: use `= any($1)` with an array instead), and where one plan fits every
 * value (after five runs Postgres may switch to a generic plan).
 *
 * @example
 * const accountById = prepared("users_account_by_id", ["id"], (db, $) =>
 *   db.select().from(accounts).where(eq(accounts.id, $.id)));
 * const [row] = await accountById.execute(db, { id });
 */
export function prepared<const K extends string, B extends Built>(
  name: string,
  keys: readonly K[],
  build: (db: Executor, $: { readonly [P in K]: Placeholder<P> }) => B,
): PreparedStatement<ResultOf<B>, K> {
  const placeholders = Object.fromEntries(keys.map((k) => [k, sql.placeholder(k)])) as { [P in K]: Placeholder<P> };
  // One built query per dialect, i.e. per `drizzle()` handle: the pool's session and the sessions
  // of its transactions share the dialect (and so the SQL text), not the connection.
  const built = new WeakMap<object, DriverQuery>();

  function on(db: Executor): DriverQuery {
    const session = (db as unknown as { _: { session: Session } })._.session;
    let query = built.get(session.dialect);
    if (!query) {
      const b = build(db, placeholders);
      query = isPreparable(b)
        ? (b.prepare(name) as unknown as DriverQuery)
        : session.prepareQuery((session.dialect as Dialect).sqlToQuery(b), undefined, name, false);
      built.set(session.dialect, query);
    }
    // A drizzle prepared query runs on the client it was built with. Another executor (a
    // transaction, or the pool after building in one) gets a view with its own client: the
    // text, parameters and row mapping are shared, nothing is rebuilt.
    return query.client === session.client ? query : (Object.create(query, { client: { value: session.client } }) as DriverQuery);
  }

  const statement: PreparedStatement<ResultOf<B>, K> = {
    name,
    execute: (db, ...values) => on(db).execute(values[0] ?? {}) as Promise<ResultOf<B>>,
    returns: <T>() => statement as unknown as PreparedStatement<T[], K>,
  };
  return statement;
}

function isPreparable(b: Built): b is Preparable {
  return typeof (b as Partial<Preparable>).prepare === "function";
}
