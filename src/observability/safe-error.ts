/**
 * What of an error may be logged. A failed statement's error carries the statement's parameters
 * (drizzle's `Failed query: ... params: ...` message and `params`, postgres.js's `parameters`,
 * Postgres's `detail` such as `Key (email)=(a@b.c) already exists`): password hashes, emails,
 * logins. None of that may reach a log line. safeError keeps a fixed list of fields: the class,
 * a message without parameters, the stack (with the same message), and for Postgres errors the
 * SQLSTATE, constraint, column, table and schema; causes are walked the same way.
 */

/** SafeError is the loggable shape of an error. */
export interface SafeError {
  type: string;
  message: string;
  stack?: string;
  code?: string;
  constraint?: string;
  column?: string;
  table?: string;
  schema?: string;
  severity?: string;
  routine?: string;
  cause?: SafeError | string;
}

// Postgres fields (postgres.js names) kept under our names; everything else is dropped.
const PG_FIELDS = [
  ["constraint_name", "constraint"],
  ["column_name", "column"],
  ["table_name", "table"],
  ["schema_name", "schema"],
  ["severity", "severity"],
  ["routine", "routine"],
] as const;

/** A statement error's message may end with the value it refused (`invalid input syntax for type uuid: "..."`). */
const TRAILING_VALUE = /: ".*"$/s;

const SAFE = new WeakSet<object>();

function isQueryError(err: object): err is Error & { query: string; params: unknown } {
  return "query" in err && typeof err.query === "string" && "params" in err;
}

/**
 * safeError turns anything thrown into a SafeError: never a query parameter, never Postgres's
 * `detail`, `where` or `hint`, never an own field outside the list above.
 *
 * @example log.error({ err: safeError(err) }, "unhandled error");
 */
export function safeError(err: unknown, depth = 0): SafeError {
  // Already made safe (the logger's serializer sees what handleError passed it).
  if (SAFE.has(err as object)) return err as SafeError;
  if (!(err instanceof Error)) {
    const out = { type: typeof err, message: typeof err === "string" ? err.replace(TRAILING_VALUE, ': "[redacted]"') : "non-error thrown" };
    SAFE.add(out);
    return out;
  }
  const original = err.message;
  let message = original;
  if (isQueryError(err)) message = `Failed query: ${err.query}`;
  else message = message.replace(TRAILING_VALUE, ': "[redacted]"');
  const out: SafeError = { type: err.name || err.constructor?.name || "Error", message };
  if (typeof err.stack === "string") out.stack = original ? err.stack.replace(original, message) : err.stack;
  const fields = err as unknown as Record<string, unknown>;
  if (typeof fields.code === "string") out.code = fields.code;
  for (const [from, to] of PG_FIELDS) if (typeof fields[from] === "string") out[to] = fields[from] as string;
  if (err.cause !== undefined && depth < 5) out.cause = safeError(err.cause, depth + 1);
  SAFE.add(out);
  return out;
}

/** sqlState is the SQLSTATE of a Postgres error or of the error it caused, if any. */
export function sqlState(err: unknown): string | undefined {
  for (let e = err, i = 0; e instanceof Error && i < 6; e = e.cause, i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code)) return code;
  }
  return undefined;
}
