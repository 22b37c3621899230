// Long texts (a driver error carries the whole failed statement) are cut so that one failure
// cannot bloat a dead-letter row or a log line.
const MAX_CHARS = 4000;

/**
 * errorText renders a thrown value as it is logged and stored (dead letters, a subscription's
 * last error, a sink's failure): `Name: message`, with the root cause first. drizzle wraps a
 * driver error in "Failed query: <sql> params: ..." and keeps the reason (a violated
 * constraint, say) in `cause`; a sink wraps the AWS error the same way. The name is the error's
 * class (`PostgresError`, `ThrottlingException`), or for a plain `Error` its Node or AWS code
 * (`ECONNRESET`), which says more than "Error".
 */
export function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err).slice(0, MAX_CHARS);
  const own = describe(err);
  const cause = err.cause;
  return (cause instanceof Error ? `${describe(cause)} (in ${own})` : own).slice(0, MAX_CHARS);
}

function describe(err: Error): string {
  const code = (err as { code?: unknown }).code;
  const name = err.name === "Error" && typeof code === "string" && code !== "" ? code : err.name;
  return `${name}: ${err.message}`;
}
